// The error registry against its two documents: src/api/ERRORS.md (same table) and api.md
// ("Codes in use", and every `STATUS Name` (code N) the contract mentions).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { ApiError, ERRORS, clientErrorName, errorBody, isErrorName, rawErrorResponse, toApiError, type ErrorName } from '../src/api/errors';
import { EngineError, type EngineErrorName } from '../src/snapshots/errors';

const REPO = path.resolve(__dirname, '..');
const ERRORS_MD = path.join(REPO, 'src', 'api', 'ERRORS.md');
// CI has the shared docs beside the clone.
const API_MD = path.resolve(REPO, '..', 'shared', 'docs', 'api.md');
const haveApiMd = fs.existsSync(API_MD);
if (!haveApiMd) console.warn(`[volsnapd tests] skipping the api.md registry checks: ${API_MD} is not there`);

function markdownTable(file: string): Array<{ name: string; code: string; status: number }> {
  const rows: Array<{ name: string; code: string; status: number }> = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^\|\s*([A-Za-z]+)\s*\|\s*(\d{3})\s*\|\s*(\d{3})\s*\|/.exec(line);
    if (m) rows.push({ name: m[1]!, code: m[2]!, status: Number(m[3]) });
  }
  return rows;
}

describe('the registry', () => {
  it('has unique codes, three digits, statuses 4xx/5xx, and codes of its own only above 900', () => {
    const codes = Object.values(ERRORS).map((e) => e.code);
    expect(new Set(codes).size).toBe(codes.length);
    for (const [name, spec] of Object.entries(ERRORS)) {
      expect(spec.code, name).toMatch(/^\d{3}$/);
      expect(spec.status >= 400 && spec.status < 600, name).toBe(true);
      expect(spec.message.length, name).toBeGreaterThan(0);
    }
    for (const name of ['InvalidParameter', 'Unauthorized', 'Conflict', 'PayloadTooLarge', 'NotFound', 'MethodNotAllowed', 'UnsupportedMediaType', 'ServiceUnavailable', 'InternalError'] as const) {
      expect(Number(ERRORS[name].code), name).toBeGreaterThan(900);
    }
  });

  it('is the same table as src/api/ERRORS.md, row for row', () => {
    const rows = markdownTable(ERRORS_MD);
    expect(rows.map((r) => r.name)).toEqual(Object.keys(ERRORS));
    for (const row of rows) {
      expect(isErrorName(row.name), row.name).toBe(true);
      const spec = ERRORS[row.name as ErrorName];
      expect({ name: row.name, code: row.code, status: row.status }).toEqual({ name: row.name, code: spec.code, status: spec.status });
    }
  });

  it.skipIf(!haveApiMd)('holds every code api.md lists under "Codes in use", with the same status', () => {
    const text = fs.readFileSync(API_MD, 'utf8');
    const start = text.indexOf('Codes in use');
    expect(start, 'api.md has a "Codes in use" list').toBeGreaterThan(-1);
    const paragraph = text.slice(start, text.indexOf('\n\n', start));
    const listed = [...paragraph.matchAll(/(\d{3}) ([A-Za-z]+) (\d{3})/g)].map((m) => ({ code: m[1]!, name: m[2]!, status: Number(m[3]) }));
    expect(listed.length).toBeGreaterThanOrEqual(14);
    for (const { code, name, status } of listed) {
      expect(isErrorName(name), `${name} is in the registry`).toBe(true);
      expect(ERRORS[name as ErrorName], name).toMatchObject({ code, status });
    }
    // "New conditions get new codes above 900 (e.g. InvalidParameter, Unauthorized 401, ...)"
    for (const m of paragraph.matchAll(/\b(InvalidParameter|Unauthorized|Conflict|PayloadTooLarge)\b(?: (\d{3}))?/g)) {
      const spec = ERRORS[m[1] as ErrorName];
      expect(Number(spec.code), m[1]).toBeGreaterThan(900);
      if (m[2]) expect(spec.status, m[1]).toBe(Number(m[2]));
    }
  });

  it.skipIf(!haveApiMd)('agrees with every `STATUS Name` (code N) api.md names elsewhere', () => {
    const text = fs.readFileSync(API_MD, 'utf8');
    const mentions = [...text.matchAll(/`(\d{3}) ([A-Za-z]+)`(?:,? \(?code (\d{3})\)?)?/g)];
    expect(mentions.length).toBeGreaterThan(5);
    for (const m of mentions) {
      const name = m[2]!;
      expect(isErrorName(name), `${name} is in the registry`).toBe(true);
      expect(ERRORS[name as ErrorName].status, name).toBe(Number(m[1]));
      if (m[3]) expect(ERRORS[name as ErrorName].code, name).toBe(m[3]);
    }
  });
});

describe('mapping errors', () => {
  // The compiler checks this table is complete: every engine refusal has a registry name.
  const ENGINE_KINDS: Record<EngineErrorName, ErrorName> = {
    UnknownVolume: 'UnknownVolume',
    UnknownVolumeSnapshot: 'UnknownVolumeSnapshot',
    UnknownStorageNode: 'UnknownStorageNode',
    InvalidParameter: 'InvalidParameter',
    OutOfDiskSpace: 'OutOfDiskSpace',
    InvalidVolumeState: 'InvalidVolumeState',
    Conflict: 'Conflict',
    ServiceUnavailable: 'ServiceUnavailable',
  };

  it('maps every EngineError kind to its registry entry, keeping the message', () => {
    for (const [kind, name] of Object.entries(ENGINE_KINDS)) {
      const e = toApiError(new EngineError(kind as EngineErrorName, `because ${kind}`));
      expect(e?.body()).toEqual({ error: name, message: `because ${kind}`, code: ERRORS[name].code });
      expect(e?.statusCode).toBe(ERRORS[name].status);
    }
  });

  it("maps Fastify's own errors by code, and other 4xx by status", () => {
    const fst = (code: string, statusCode: number, message = 'x') => Object.assign(new Error(message), { code, statusCode });
    expect(toApiError(fst('FST_ERR_CTP_BODY_TOO_LARGE', 413))?.errorName).toBe('PayloadTooLarge');
    expect(toApiError(fst('FST_ERR_CTP_INVALID_MEDIA_TYPE', 415))?.errorName).toBe('UnsupportedMediaType');
    expect(toApiError(fst('FST_ERR_BAD_URL', 400, "'%zz' is not a valid url component"))?.body()).toEqual(
      errorBody('InvalidParameter', "'%zz' is not a valid url component"),
    );
    expect(toApiError(fst('SOMETHING_NEW', 409))?.errorName).toBe('Conflict');
    expect(toApiError(fst('SOMETHING_NEW', 418))?.errorName).toBe('InvalidParameter');
  });

  it('maps validation errors: a malformed path id as the route says, a mapped field as unknown, the rest InvalidParameter', () => {
    const v = (context: string, instancePath: string, keyword = 'pattern') =>
      Object.assign(new Error('bad'), { validation: [{ instancePath, keyword }], validationContext: context, statusCode: 400 });
    expect(toApiError(v('params', '/id'), { malformedIdError: 'UnknownVolumeSnapshot' })?.errorName).toBe('UnknownVolumeSnapshot');
    expect(toApiError(v('params', '/id'))?.errorName).toBe('InvalidParameter');
    expect(toApiError(v('body', '/volume_id'), { malformedFieldErrors: { volume_id: 'UnknownVolume' } })?.errorName).toBe('UnknownVolume');
    expect(toApiError(v('body', '/volume_id', 'type'), { malformedFieldErrors: { volume_id: 'UnknownVolume' } })?.errorName).toBe('InvalidParameter');
    expect(toApiError(v('querystring', '/limit', 'maximum'))?.body()).toEqual(errorBody('InvalidParameter', 'bad'));
  });

  it('leaves unexpected faults to the 500 path (null), never exposing them', () => {
    expect(toApiError(new TypeError('x is undefined'))).toBeNull();
    expect(toApiError(Object.assign(new Error('db'), { statusCode: 500 }))).toBeNull();
    expect(toApiError('a string')).toBeNull();
    expect(toApiError(undefined)).toBeNull();
  });

  it('answers errors raised before routing with a complete HTTP response in the documented shape', () => {
    const raw = rawErrorResponse(new ApiError(clientErrorName('HPE_HEADER_OVERFLOW')));
    expect(raw).toMatch(/^HTTP\/1\.1 431 /);
    const body = raw.slice(raw.indexOf('\r\n\r\n') + 4);
    expect(JSON.parse(body)).toEqual(errorBody('RequestHeaderFieldsTooLarge'));
    expect(raw).toContain(`Content-Length: ${Buffer.byteLength(body)}\r\n`);
    expect(clientErrorName('HPE_INVALID_METHOD')).toBe('InvalidParameter');
  });
});
