// Why one event or message was refused: an item of every `errors` (src/shared/errors.ts FieldError), as a
// schema the document's responses and the SDK routes' share.
import * as z from "zod/mini";

export const fieldError = z.object({
  index: z.optional(z.int()),
  field: z.nullable(z.string()),
  message: z.string(),
  rule: z.optional(z.string()),
});
