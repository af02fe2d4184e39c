// The little of formidable 3 that test/helpers/multipart-readers.ts uses (the package ships no types).
declare module "formidable" {
  import type { Writable } from "node:stream";
  interface Options {
    fileWriteStreamHandler?: () => Writable;
    maxFields?: number;
    allowEmptyFiles?: boolean;
    minFileSize?: number;
  }
  interface Form {
    parse(req: unknown, cb: (err: unknown, fields: Record<string, string[] | undefined>, files: Record<string, unknown[] | undefined>) => void): void;
  }
  export default function formidable(options?: Options): Form;
}
