// Errors as values: every fallible step of the relay returns a Result, never throws across a module
// boundary. `temporary` decides between a 4xx defer (retry later) and a 5xx bounce.
export interface Failure {
  ok: false;
  /** Stable machine-readable code (metrics label, logs), e.g. TLS_NOT_OFFERED. */
  code: string;
  temporary: boolean;
  message: string;
}
export interface Success<T> {
  ok: true;
  value: T;
}
export type Result<T> = Success<T> | Failure;

export function ok<T>(value: T): Success<T> {
  return { ok: true, value };
}

export function fail(code: string, temporary: boolean, message: string): Failure {
  return { ok: false, code, temporary, message };
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
