/**
 * What GET /v1/messages and GET /v1/otp share: a page of ids from the store,
 * each item built by the service's single-item view (so the history masks
 * exactly what GET /v1/messages/:id and GET /v1/otp/:id mask, and shows
 * nothing they do not), and the same page as CSV.
 */
import Negotiator from "negotiator";
import type { FastifyReply } from "fastify";
import type { HistoryPage } from "../../store/history.js";
import { encodeHistoryCursor } from "../schemas.js";

/**
 * The items of a page as their single-item GET shows them. A record that
 * expired between the listing and its read is left out.
 */
export async function viewsOf<T>(page: HistoryPage, view: (id: string) => Promise<T | null>): Promise<{ items: T[]; nextCursor: string | null }> {
  const views: (T | null)[] = await Promise.all(page.ids.map((id) => view(id)));
  return { items: views.filter((item): item is T => item !== null), nextCursor: page.next ? encodeHistoryCursor(page.next) : null };
}

/**
 * CSV or JSON: `format` decides when given. Otherwise the Accept header,
 * negotiated by `negotiator` (RFC 9110 ranges, q-values, specificity), with
 * JSON first so a tie or a bare wildcard keeps the default; CSV only when the
 * header names text/csv itself.
 */
export function wantsCsv(format: "json" | "csv" | undefined, accept: string | undefined): boolean {
  if (format) return format === "csv";
  if (!accept) return false;
  const negotiator = new Negotiator({ headers: { accept } });
  if (negotiator.mediaType(["application/json", "text/csv"]) !== "text/csv") return false;
  // A wildcard alone (*/*, text/*) may match text/csv; JSON still wins unless text/csv is named.
  return negotiator.mediaTypes().includes("text/csv");
}

/** A cell a spreadsheet would run as a formula (OWASP "CSV injection"): one starting with = + - @, a tab or a CR. */
const FORMULA_START = /^[=+\-@\t\r]/;
/** ...unless it is only a number or a masked number (+254*****2333), which no spreadsheet can run. */
const PLAIN_NUMBER = /^[+-]?[\d*.]+$/;

/**
 * One field as RFC 4180 §2 writes it: in double quotes when it holds a
 * comma, a double quote, CR or LF, with each double quote doubled. A field
 * that a spreadsheet would take for a formula is prefixed with `'` first.
 */
export function csvField(value: string | number | null | undefined): string {
  let text = value === null || value === undefined ? "" : String(value);
  if (FORMULA_START.test(text) && !PLAIN_NUMBER.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export type CsvColumns<T> = readonly (readonly [header: string, value: (item: T) => string | number | null | undefined])[];

/** A header row and one row per item, each line ended by CRLF (RFC 4180). */
export function toCsv<T>(columns: CsvColumns<T>, items: readonly T[]): string {
  const line = (fields: (string | number | null | undefined)[]) => `${fields.map(csvField).join(",")}\r\n`;
  return line(columns.map(([header]) => header)) + items.map((item) => line(columns.map(([, value]) => value(item)))).join("");
}

/**
 * Sends the page as CSV: `text/csv` with its header row declared (RFC 4180,
 * RFC 7111), and the next page's cursor in `x-next-cursor`.
 */
export function sendCsv<T>(reply: FastifyReply, name: string, columns: CsvColumns<T>, page: { items: T[]; nextCursor: string | null }): FastifyReply {
  if (page.nextCursor) reply.header("x-next-cursor", page.nextCursor);
  return reply
    .header("content-disposition", `attachment; filename="${name}.csv"`)
    .type("text/csv; charset=utf-8; header=present")
    .send(toCsv(columns, page.items));
}
