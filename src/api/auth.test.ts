import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../config/defaults.ts';
import { authenticate } from './auth.ts';

describe('authenticate', () => {
  const server = { ...DEFAULT_CONFIG.server, bearerTokens: [{ token: 's3cret-token-0123456789', roles: ['reader' as const] }] };
  it("names a bearer caller by a hash of its token, never by the token's own characters (the name is shown to readers)", () => {
    const p = authenticate('Bearer s3cret-token-0123456789', server)!;
    expect(p.name).toMatch(/^token:[0-9a-f]{8}$/);
    expect(p.name).not.toContain('s3cr');
    expect(authenticate('Bearer s3cret-token-0123456780', server)).toBeNull();
  });
});
