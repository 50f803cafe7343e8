import { describe, expect, it } from "vitest";
import { loadConfig } from "../../api/config/config.js";
import { createSealer } from "../../api/security/sealing.js";

describe("configuration", () => {
  it("has working defaults with nothing set", () => {
    const result = loadConfig({});
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config.http).toMatchObject({ port: 8080, host: "0.0.0.0", bodyLimitBytes: 65536 });
    expect(result.config.mqtt).toMatchObject({ tlsPort: 8883, port: 1883, host: "127.0.0.1" });
    expect(result.config.failoverOrder).toEqual(["device", "twilio", "africastalking", "email"]);
    expect(result.config.otp.policy).toMatchObject({ maxAttempts: 5, resendCooldownSeconds: 30, lockoutThreshold: 10 });
    expect(result.config.redisUrl).toBeUndefined();
    expect(result.config.store).toBe("sqlite");
    expect(result.config.leases).toEqual({ sweepIntervalMs: 2000, graceMs: 5000 });
    expect(result.config.twilio).toBeUndefined();
  });

  it("chooses the store: SQLite by default, Redis with REDIS_URL, memory only when asked", () => {
    const store = (env: Record<string, string>) => {
      const result = loadConfig(env);
      return result.ok ? result.config.store : result.problems;
    };
    expect(store({ REDIS_URL: "redis://127.0.0.1:6379" })).toBe("redis");
    expect(store({ STORE: "memory" })).toBe("memory");
    expect(store({ STORE: "redis" })).toEqual(["STORE: redis needs REDIS_URL"]);
    expect(store({ STORE: "memory", REDIS_URL: "redis://127.0.0.1:6379" })).toEqual(["STORE: memory cannot be used with REDIS_URL (unset one of them)"]);
    expect(store({ STORE: "disk" })).toEqual([expect.stringMatching(/^STORE: must be sqlite, memory or redis/)]);
  });

  it("takes several broker URLs for phones, in order, each mqtts://", () => {
    const result = loadConfig({ PUBLIC_MQTT_URL: "mqtts://a.example.com:8883, mqtts://b.example.com:8883" });
    expect(result.ok && result.config.mqtt.publicUrls).toEqual(["mqtts://a.example.com:8883", "mqtts://b.example.com:8883"]);
    const mixed = loadConfig({ PUBLIC_MQTT_URL: "mqtts://a.example.com:8883,mqtt://b.example.com:1883" });
    expect(mixed.ok ? [] : mixed.problems).toEqual([expect.stringMatching(/^PUBLIC_MQTT_URL: must be an mqtts:\/\/ URL/)]);
  });

  it("reads address lists (SEED_KEYLESS_FROM, MQTT_EXEMPT_SOURCES): loopback by default, none, addresses and CIDRs, and names a bad entry", () => {
    const lists = (env: Record<string, string>) => {
      const result = loadConfig(env);
      return result.ok ? [result.config.http.seedKeylessFrom, result.config.mqtt.limits.exemptSources] : result.problems;
    };
    expect(lists({})).toEqual([
      ["127.0.0.0/8", "::1"],
      ["127.0.0.0/8", "::1"],
    ]);
    expect(lists({ SEED_KEYLESS_FROM: "none", MQTT_EXEMPT_SOURCES: "10.0.0.0/8, fd00::/8,192.0.2.7" })).toEqual([[], ["10.0.0.0/8", "fd00::/8", "192.0.2.7"]]);
    expect(lists({ SEED_KEYLESS_FROM: "10.0.0.0/33", MQTT_EXEMPT_SOURCES: "gateway.local" })).toEqual([
      expect.stringMatching(/^MQTT_EXEMPT_SOURCES: .*not an address: gateway\.local/),
      expect.stringMatching(/^SEED_KEYLESS_FROM: .*not an address: 10\.0\.0\.0\/33/),
    ]);
  });

  it("names every bad variable, one line each, without echoing secrets", () => {
    const result = loadConfig({
      PORT: "eighty",
      FAILOVER_ORDER: "twilio,pigeon",
      REDIS_URL: "localhost:6379",
      OTP_TTL_SECONDS: "5",
      TWILIO_ACCOUNT_SID: "AC123",
      OTP_SECRET: "short-secret",
      PUBLIC_MQTT_URL: "mqtt://gw.example.com:1883",
      TLS_CERT_FILE: "/etc/otpgate/server.pem",
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const byVariable = Object.fromEntries(result.problems.map((line) => [line.split(":")[0], line]));
    expect(Object.keys(byVariable).sort()).toEqual(
      ["FAILOVER_ORDER", "OTP_SECRET", "OTP_TTL_SECONDS", "PORT", "PUBLIC_MQTT_URL", "REDIS_URL", "TLS_KEY_FILE", "TWILIO_AUTH_TOKEN", "TWILIO_FROM"].sort(),
    );
    expect(byVariable.PORT).toContain('"eighty"');
    expect(byVariable.TWILIO_FROM).toContain("Twilio");
    expect(byVariable.OTP_SECRET).not.toContain("short-secret");
  });

  it("reads the providers when they are complete", () => {
    const result = loadConfig({
      TWILIO_ACCOUNT_SID: "AC1",
      TWILIO_AUTH_TOKEN: "t",
      TWILIO_FROM: "+15005550006",
      AT_USERNAME: "sandbox",
      AT_API_KEY: "k",
      SMTP_URL: "smtp://127.0.0.1:2525",
      EMAIL_FROM: "a@b.c",
      FAILOVER_ORDER: " email , twilio ",
    });
    expect(result.ok && result.config).toMatchObject({
      twilio: { accountSid: "AC1", from: "+15005550006" },
      africasTalking: { username: "sandbox", apiKey: "k" },
      email: { smtpUrl: "smtp://127.0.0.1:2525", from: "a@b.c" },
      failoverOrder: ["email", "twilio"],
    });
  });
});

describe("sealed message bodies", () => {
  it("open with the same secret only, and differ every time", () => {
    const sealer = createSealer("a-secret-of-sufficient-length-000");
    const a = sealer.seal("123456 is your code");
    expect(a).not.toContain("123456");
    expect(sealer.seal("123456 is your code")).not.toBe(a);
    expect(sealer.open(a)).toBe("123456 is your code");
    expect(() => createSealer("another-secret-of-sufficient-len").open(a)).toThrow();
  });
});
