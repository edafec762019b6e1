/**
 * Errors that carry their CNI error code from where they arise. lib/skel turns any thrown value into
 * the spec's error JSON in one place; everything else only throws.
 */

/** Error codes from SPEC.md 1.1.0 "Error" section (0-99 reserved by the spec). */
export const ErrorCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IoFailure: 5,
  DecodeFailure: 6,
  InvalidConfig: 7,
  TryAgainLater: 11,
  PluginNotAvailable: 50,
  LimitedConnectivity: 51,
  /** Generic plugin failure, as the Go plugins use for most errors; we use it only when nothing fits better. */
  Internal: 999,
} as const;
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode] | number;

export class CniError extends Error {
  readonly code: number;
  readonly details: string;
  constructor(code: number, msg: string, details = '') {
    super(msg);
    this.name = 'CniError';
    this.code = code;
    this.details = details;
  }
  toJSON(cniVersion: string): { cniVersion: string; code: number; msg: string; details?: string } {
    return { cniVersion, code: this.code, msg: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

export const envError = (msg: string, details = '') => new CniError(ErrorCode.InvalidEnvironment, msg, details);
export const decodeError = (msg: string, details = '') => new CniError(ErrorCode.DecodeFailure, msg, details);
export const configError = (msg: string, details = '') => new CniError(ErrorCode.InvalidConfig, msg, details);
export const versionError = (msg: string, details = '') => new CniError(ErrorCode.IncompatibleVersion, msg, details);
export const ioError = (msg: string, details = '') => new CniError(ErrorCode.IoFailure, msg, details);
export const tryAgainError = (msg: string, details = '') => new CniError(ErrorCode.TryAgainLater, msg, details);
export const internalError = (msg: string, details = '') => new CniError(ErrorCode.Internal, msg, details);

/** Wraps anything thrown into a CniError without losing a code that is already there. */
export function asCniError(e: unknown): CniError {
  if (e instanceof CniError) return e;
  if (e instanceof Error) {
    const errno = (e as NodeJS.ErrnoException).code;
    // File-system and process failures are I/O failures in the spec's terms.
    if (typeof errno === 'string' && /^E[A-Z]+$/.test(errno)) return ioError(e.message);
    return internalError(e.message);
  }
  return internalError(String(e));
}
