import { FraudRefusal } from "../fraud/fraud-rules.js";
import { OtpError } from "../otp/otp-service.js";
import { ApiError } from "./errors.js";

const STATUS: Record<OtpError["code"], number> = { invalid_request: 400, not_found: 404, rate_limited: 429, no_route: 503, overloaded: 503 };

/** A fraud-guard refusal as its HTTP error: 403 for a number or country never allowed, 429 (Retry-After) for volume. */
export function fraudErrorToApi(error: unknown): never {
  if (error instanceof FraudRefusal) throw new ApiError(error.status, error.code, error.message, error.retryAfterSeconds);
  throw error;
}

/** For `.catch()`: turns the service's OtpError (or a fraud refusal) into the HTTP error, rethrows anything else. */
export function otpErrorToApi(error: unknown): never {
  if (error instanceof FraudRefusal) fraudErrorToApi(error);
  if (error instanceof OtpError) throw new ApiError(STATUS[error.code], error.code, error.message, error.retryAfterSeconds);
  throw error;
}
