/**
 * Errors a user can act on. The CLI prints `message` as one line and exits with `exitCode`;
 * the server maps `kind` to an HTTP status. Anything that is not a GhnError is a bug.
 */
export type GhnErrorKind =
  | 'not-found'      // a file the user named does not exist
  | 'bad-input'      // not ONNX, truncated, malformed, wrong shape
  | 'unsupported'    // valid ONNX that uses something ghn cannot handle
  | 'missing-data'   // external data file or dataset missing
  | 'usage';         // wrong command-line usage / options

const EXIT_CODES: Record<GhnErrorKind, number> = {
  'not-found': 2,
  'bad-input': 3,
  'unsupported': 4,
  'missing-data': 5,
  'usage': 64,
};

export class GhnError extends Error {
  readonly kind: GhnErrorKind;
  constructor(kind: GhnErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GhnError';
    this.kind = kind;
  }
  get exitCode(): number {
    return EXIT_CODES[this.kind];
  }
}
