import { OtpError } from "../otp/otp-service.js";
import { ApiError } from "./errors.js";

const STATUS: Record<OtpError["code"], number> = { invalid_request: 400, not_found: 404, rate_limited: 429, no_route: 503, overloaded: 503 };

/** For `.catch()`: turns the service's OtpError into the HTTP error, rethrows anything else. */
export function otpErrorToApi(error: unknown): never {
  if (error instanceof OtpError) throw new ApiError(STATUS[error.code], error.code, error.message, error.retryAfterSeconds);
  throw error;
}
