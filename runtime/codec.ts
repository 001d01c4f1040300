// Message encoding for frames: cbor-x records over a shape table fixed at start-up.
// Every frame decodes on its own — no structure is ever learned from an earlier frame — because
// faults drop, duplicate and reorder frames and a restarted actor starts with a fresh decoder.
//
// Shapes are the key lists of the message records a protocol sends, in key order. Both ends build
// their codec from the same list, so a record of a known shape costs one tag, not its key names;
// an object of any other shape is still encoded, with its structure defined inside that frame.
// Uint8Array fields (commands) are carried as byte strings: copied once, never re-encoded.
import { Decoder, Encoder } from 'cbor-x';

export type MessageShapes = readonly (readonly string[])[];

/** cbor-x numbers its shared record structures from here; more than this many are refused. */
export const messageShapesMax = 64;

export class Codec {
  private readonly encoder: Encoder;
  private readonly decoder: Decoder;
  /** Frames that failed to decode since this codec was made. */
  decodeFailures = 0;

  constructor(readonly shapes: MessageShapes = []) {
    if (shapes.length > messageShapesMax) {
      throw new RangeError(`at most ${messageShapesMax} message shapes can be shared, got ${shapes.length}; merge shapes that differ only slightly`);
    }
    const seen = new Set<string>();
    for (const shape of shapes) {
      const key = shape.join('\0');
      if (shape.length === 0 || seen.has(key)) throw new RangeError(`message shapes must be non-empty and distinct, got [${shape.join(', ')}] twice or empty`);
      seen.add(key);
    }
    const options = () => ({
      useRecords: true,
      // cbor-x grows this list as it meets new shapes unless it is full: a full, fixed list
      // keeps every frame self-contained.
      structures: shapes.map((s) => [...s]),
      maxSharedStructures: shapes.length,
    });
    this.encoder = new Encoder(options());
    // copyBuffers: decoded byte strings must not alias ring memory that the producer reuses.
    this.decoder = new Decoder({ ...options(), copyBuffers: true });
  }

  encode(message: unknown): Uint8Array {
    return this.encoder.encode(message);
  }

  /** Decodes one frame; a malformed frame throws DecodeError (callers count and skip it). */
  decode(bytes: Uint8Array, start = 0, end = bytes.length): unknown {
    try {
      return this.decoder.decode(start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end));
    } catch (err) {
      this.decodeFailures++;
      throw new DecodeError(end - start, err instanceof Error ? err.message : String(err));
    }
  }
}

export class DecodeError extends Error {
  constructor(readonly frameBytes: number, reason: string) {
    super(`could not decode a ${frameBytes}-byte frame: ${reason}`);
    this.name = 'DecodeError';
  }
}
