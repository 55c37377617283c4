import { describe, expect, test } from '@jest/globals';
import { APACHE_CALLBACK_PATH, APACHE_LOGIN_PATH, apacheConfig, missingApachePrerequisites } from '../../bench/peers/apache.ts';

/**
 * The benchmark's Apache peer must be the setup issue 16 names (server-side Redis
 * sessions, PKCE, 401 on the API, the bearer from the access token, no cookie
 * upstream, keep-alive) and must never touch the system's own httpd: everything it
 * writes or listens on is its own. Checked on the generated text, without httpd.
 */
const config = apacheConfig({
  dir: '/tmp/bench-apache-x',
  port: 40123,
  issuer: 'http://localhost:40001',
  clientId: 'bff',
  clientSecret: 'secret-secret-secret',
  cryptoPassphrase: 'passphrase',
  redisAddress: '127.0.0.1:40002',
  upstreamUrl: 'http://127.0.0.1:40003',
  modulesDir: '/mods',
  user: { user: 'www-data', group: 'www-data' },
});

function location(path: string): string {
  const match = new RegExp(`<Location ${path}>([\\s\\S]*?)</Location>`).exec(config);
  if (!match?.[1]) throw new Error(`no <Location ${path}>`);
  return match[1];
}

describe('bench: the mod_auth_openidc peer’s httpd config', () => {
  test('keeps every file and socket of its own', () => {
    expect(config).toMatch(/^ServerRoot "\/tmp\/bench-apache-x"$/m);
    expect(config).toMatch(/^Listen 127\.0\.0\.1:40123$/m);
    expect(config).toMatch(/^PidFile "\/tmp\/bench-apache-x\/httpd\.pid"$/m);
    expect(config).toMatch(/^ErrorLog "\/tmp\/bench-apache-x\/error\.log"$/m);
    expect(config).toMatch(/^DefaultRuntimeDir "\/tmp\/bench-apache-x\/run"$/m);
    expect(config).not.toMatch(/^Include/m);
    for (const module of ['mod_mpm_event.so', 'mod_authz_user.so', 'mod_headers.so', 'mod_proxy_http.so', 'mod_auth_openidc.so']) {
      expect(config).toContain(`"/mods/${module}"`);
    }
  });

  test('is the deployment issue 16 compares with', () => {
    expect(config).toMatch(/^OIDCProviderMetadataURL http:\/\/localhost:40001\/\.well-known\/openid-configuration$/m);
    expect(config).toMatch(new RegExp(`^OIDCRedirectURI http://127\\.0\\.0\\.1:40123${APACHE_CALLBACK_PATH}$`, 'm'));
    expect(APACHE_CALLBACK_PATH.startsWith(`${APACHE_LOGIN_PATH}/`)).toBe(true);
    expect(config).toMatch(/^OIDCCacheType redis$/m);
    expect(config).toMatch(/^OIDCRedisCacheServer 127\.0\.0\.1:40002$/m);
    expect(config).toMatch(/^OIDCSessionType server-cache$/m);
    expect(config).toMatch(/^OIDCPKCEMethod S256$/m);
    expect(config).toMatch(/^MaxKeepAliveRequests 0$/m);
    const api = location('/api');
    expect(api).toMatch(/^\s*OIDCUnAuthAction 401$/m);
    expect(api).toMatch(/^\s*RequestHeader set Authorization "Bearer %\{OIDC_access_token\}e"$/m);
    expect(api).toMatch(/^\s*RequestHeader unset Cookie$/m);
    expect(api).toMatch(/^\s*ProxyPass "http:\/\/127\.0\.0\.1:40003\/api" enablereuse=on keepalive=On$/m);
    expect(location(APACHE_LOGIN_PATH)).toMatch(/^\s*Require valid-user$/m);
  });

  test('a missing binary or module is named', () => {
    expect(missingApachePrerequisites('/nonexistent/apache2', '/nonexistent/modules')).toMatch(/\/nonexistent\/apache2.*mod_auth_openidc\.so/);
  });
});
