/** WebSocket close codes (RFC 6455 §7.4.1) the gateway sends itself. */
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_POLICY_VIOLATION = 1008;

/**
 * An unmasked WebSocket close frame (RFC 6455 §5.5.1) as a server sends it.
 * The gateway pipes WebSocket bytes without parsing them, so it writes the
 * frame itself; at worst it lands after a partial upstream frame, and the
 * client sees a protocol error instead of the code — it has to treat the
 * connection as gone either way.
 */
export function closeFrame(code: number, reason: string): Buffer {
  // A control frame's payload is at most 125 bytes: the 2-byte code and up to 123 of reason.
  let text = Buffer.from(reason, 'utf8');
  if (text.length > 123)
    text = Buffer.from(
      text
        .subarray(0, 123)
        .toString('utf8')
        .replace(/\uFFFD+$/, ''),
      'utf8',
    );
  const frame = Buffer.alloc(4 + text.length);
  frame[0] = 0x88;
  frame[1] = 2 + text.length;
  frame.writeUInt16BE(code, 2);
  text.copy(frame, 4);
  return frame;
}
