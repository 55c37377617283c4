import type { Request } from 'express';

/** Promise forms of express-session's callback methods. */
export const regenerateSession = (req: Request): Promise<void> => new Promise((resolve, reject) => req.session.regenerate((err: unknown) => (err ? reject(err) : resolve())));

export const saveSession = (req: Request): Promise<void> => new Promise((resolve, reject) => req.session.save((err: unknown) => (err ? reject(err) : resolve())));

export const destroySession = (req: Request): Promise<void> => new Promise((resolve, reject) => req.session.destroy((err: unknown) => (err ? reject(err) : resolve())));
