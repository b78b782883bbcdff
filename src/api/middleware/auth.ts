import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { errorBody } from '../types.ts';

type Token = { token: string; scope: 'read' | 'admin' };

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Finds the token presented, in time independent of where (or whether) it matches: every configured
 * token is compared, each as a fixed-length SHA-256 digest with timingSafeEqual.
 */
export function matchToken(tokens: readonly Token[], presented: string): Token | undefined {
  const p = digest(presented);
  let found: Token | undefined;
  for (const t of tokens) {
    if (timingSafeEqual(digest(t.token), p) && found === undefined) found = t;
  }
  return found;
}

/** Bearer tokens on /v1/*: 401 without a known token, 403 on /v1/admin/* without scope "admin". */
export function bearerAuth(tokens: readonly Token[]): MiddlewareHandler {
  return async (c, next) => {
    if (tokens.length === 0) return next();
    const header = c.req.header('authorization') ?? '';
    const presented = header.startsWith('Bearer ') ? header.slice(7).trim() : '';
    const match = matchToken(tokens, presented);
    if (!match) {
      return c.json(errorBody('UNAUTHORIZED', 'send "Authorization: Bearer <token>" with a token from [api] tokens'), 401);
    }
    if (c.req.path.startsWith('/v1/admin/') && match.scope !== 'admin') {
      return c.json(errorBody('FORBIDDEN', 'this endpoint needs a token with scope "admin"'), 403);
    }
    return next();
  };
}
