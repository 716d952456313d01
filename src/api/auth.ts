// Who is calling (api.md, "Identity, accounts and authentication").
// - The account comes from `X-VDC-Account-UUID` (dcmgr) or `X_VDC_ACCOUNT_UUID` (mussel). Node
//   lower-cases header names and keeps underscores, so both arrive as distinct lower-case keys.
// - When tokens are configured, every /api request carries `Authorization: Bearer <token>`,
//   compared in constant time against every configured token (no early exit).
// - An admin token may omit the account and then acts for every account (accountId null). Any
//   other caller must name an account; a token bound to an account may name only that one.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { ApiToken } from '../config';
import { isAccountId } from '../ids';
import { ApiError } from './errors';

export interface Caller {
  /** null: every account (an admin token without an account header). */
  accountId: string | null;
  admin: boolean;
}

/** Route config: whether the route needs an account ('required', the default) or not. */
export interface RouteAuthConfig {
  account?: 'required' | 'optional';
}

const HEADER = 'x-vdc-account-uuid';
const HEADER_UNDERSCORE = 'x_vdc_account_uuid';

interface TokenDigest {
  digest: Buffer;
  admin: boolean;
  account?: string;
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

export function accountHeader(request: FastifyRequest): string | undefined {
  const read = (name: string): string | undefined => {
    const v = request.headers[name];
    if (v === undefined) return undefined;
    // Node joins a repeated unknown header with ", ", which then fails the id check below.
    return Array.isArray(v) ? v.join(', ') : v;
  };
  const dashed = read(HEADER);
  const underscored = read(HEADER_UNDERSCORE);
  if (dashed !== undefined && underscored !== undefined && dashed !== underscored) {
    throw new ApiError('InvalidRequestCredentials', 'X-VDC-Account-UUID and X_VDC_ACCOUNT_UUID name different accounts');
  }
  return dashed ?? underscored;
}

export class Authenticator {
  private readonly tokens: TokenDigest[];

  constructor(tokens: readonly ApiToken[]) {
    // Comparing equal-length digests keeps timingSafeEqual from leaking a token's length.
    this.tokens = tokens.map((t) => ({ digest: sha256(t.token), admin: t.admin, ...(t.account ? { account: t.account } : {}) }));
  }

  get tokensRequired(): boolean {
    return this.tokens.length > 0;
  }

  private matchToken(presented: string): TokenDigest | undefined {
    const digest = sha256(presented);
    let found: TokenDigest | undefined;
    for (const t of this.tokens) {
      if (timingSafeEqual(digest, t.digest) && found === undefined) found = t;
    }
    return found;
  }

  /** The caller of `request`, or an ApiError (401, 400 InvalidRequestCredentials, 403). */
  identify(request: FastifyRequest, account: 'required' | 'optional' = 'required'): Caller {
    let token: TokenDigest | undefined;
    if (this.tokensRequired) {
      const header = request.headers.authorization;
      const m = typeof header === 'string' ? /^Bearer[ ]+([^\s]+)[ ]*$/i.exec(header) : null;
      if (!m) {
        throw new ApiError('Unauthorized', 'This API needs an Authorization: Bearer <token> header', { 'www-authenticate': 'Bearer' });
      }
      token = this.matchToken(m[1]!);
      if (!token) throw new ApiError('Unauthorized', 'The bearer token is not valid', { 'www-authenticate': 'Bearer error="invalid_token"' });
    }
    const named = accountHeader(request);
    if (named !== undefined && !isAccountId(named)) {
      throw new ApiError('InvalidRequestCredentials', 'X-VDC-Account-UUID is not an account id (a- then lowercase letters or digits)');
    }
    const admin = token?.admin === true;
    if (token?.account !== undefined && named !== undefined && named !== token.account) {
      throw new ApiError('OperationNotPermitted', 'This token may act only for its own account');
    }
    if (named === undefined) {
      if (admin || account === 'optional') return { accountId: null, admin };
      throw new ApiError('InvalidRequestCredentials', 'The request has no account: send X-VDC-Account-UUID (or X_VDC_ACCOUNT_UUID)');
    }
    return { accountId: named, admin };
  }
}
