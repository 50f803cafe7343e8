package org.otpgate.core;

import java.util.Locale;

/**
 * The part of the WHATWG URL parser (JavaScript's {@code new URL()}) that the
 * provisioning rules of broker/provisioning.ts rely on: scheme, credentials,
 * host, port, path and query of an absolute URL. {@code java.net.URI} follows
 * RFC 3986 instead and refuses or reads differently inputs that JavaScript
 * accepts (a space in a query, {@code mqtts://@host}), so the phone would not
 * judge a provisioning URI the way the server that built it does.
 *
 * Simplified on purpose, for hosts no gateway would use: internationalised
 * domain names are not converted to punycode and IPv4 is checked only in its
 * dotted decimal form.
 */
final class WebUrl {
    final String scheme;
    final String username;
    final String password;
    /** As the URL spells it: kept for opaque (non-special) hosts, lower-cased for http(s). "" when there is none. */
    final String host;
    /** "" when absent. */
    final String port;
    final String path;
    /** Without the '?', or null when there is no query. */
    final String query;

    private WebUrl(String scheme, String username, String password, String host, String port, String path, String query) {
        this.scheme = scheme;
        this.username = username;
        this.password = password;
        this.host = host;
        this.port = port;
        this.path = path;
        this.query = query;
    }

    static final class Failure extends Exception {
        Failure(String message) {
            super(message);
        }
    }

    private static final String FORBIDDEN_HOST = "\u0000\t\n\r #/:<>?@[\\]^|";

    static WebUrl parse(String input) throws Failure {
        String s = stripControlsAndSpaces(input);
        int colon = schemeEnd(s);
        String scheme = s.substring(0, colon).toLowerCase(Locale.ROOT);
        String rest = s.substring(colon + 1);
        boolean special = scheme.equals("http") || scheme.equals("https");
        if (!special && isOtherSpecialScheme(scheme)) {
            // ws, wss, ftp, file: never acceptable here; only the scheme matters to the callers.
            return new WebUrl(scheme, "", "", "", "", "", null);
        }

        String authority = null;
        if (special) {
            int start = 0;
            while (start < rest.length() && (rest.charAt(start) == '/' || rest.charAt(start) == '\\')) start++;
            int end = indexOfAny(rest, start, "/\\?#");
            authority = rest.substring(start, end);
            rest = rest.substring(end);
        } else if (rest.startsWith("//")) {
            int end = indexOfAny(rest, 2, "/?#");
            authority = rest.substring(2, end);
            rest = rest.substring(end);
        }

        String username = "";
        String password = "";
        String host = "";
        String port = "";
        if (authority != null) {
            int at = authority.lastIndexOf('@');
            if (at >= 0) {
                String userinfo = authority.substring(0, at);
                int split = userinfo.indexOf(':');
                username = split < 0 ? userinfo : userinfo.substring(0, split);
                password = split < 0 ? "" : userinfo.substring(split + 1);
                authority = authority.substring(at + 1);
            }
            String hostPart = authority;
            int portColon;
            if (authority.startsWith("[")) {
                int close = authority.indexOf(']');
                if (close < 0) throw new Failure("unclosed IPv6 address");
                hostPart = authority.substring(0, close + 1);
                portColon = close + 1 < authority.length() ? close + 1 : -1;
                if (portColon >= 0 && authority.charAt(portColon) != ':') throw new Failure("text after an IPv6 address");
            } else {
                portColon = authority.indexOf(':');
                if (portColon >= 0) hostPart = authority.substring(0, portColon);
            }
            if (portColon >= 0) {
                if (hostPart.isEmpty()) throw new Failure("a port without a host");
                port = checkPort(authority.substring(portColon + 1));
            }
            host = special ? domain(hostPart) : opaqueHost(hostPart);
        }

        int queryStart = rest.indexOf('?');
        int hash = rest.indexOf('#');
        if (hash >= 0 && (queryStart < 0 || hash < queryStart)) queryStart = -1;
        int pathEnd = queryStart >= 0 ? queryStart : (hash >= 0 ? hash : rest.length());
        String path = rest.substring(0, pathEnd);
        if (special) path = path.replace('\\', '/');
        String query = queryStart < 0 ? null : rest.substring(queryStart + 1, hash >= 0 ? hash : rest.length());
        return new WebUrl(scheme, username, password, host, port, path, query);
    }

    /** Leading and trailing C0 controls and spaces go, tabs and newlines go everywhere (WHATWG's first steps). */
    private static String stripControlsAndSpaces(String input) {
        int start = 0;
        int end = input.length();
        while (start < end && input.charAt(start) <= ' ') start++;
        while (end > start && input.charAt(end - 1) <= ' ') end--;
        StringBuilder out = new StringBuilder();
        for (int i = start; i < end; i++) {
            char c = input.charAt(i);
            if (c != '\t' && c != '\n' && c != '\r') out.append(c);
        }
        return out.toString();
    }

    private static int schemeEnd(String s) throws Failure {
        if (s.isEmpty() || !isAsciiAlpha(s.charAt(0))) throw new Failure("no scheme");
        for (int i = 1; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == ':') return i;
            if (!isAsciiAlpha(c) && !(c >= '0' && c <= '9') && c != '+' && c != '-' && c != '.') break;
        }
        throw new Failure("no scheme");
    }

    private static boolean isOtherSpecialScheme(String scheme) {
        return scheme.equals("ws") || scheme.equals("wss") || scheme.equals("ftp") || scheme.equals("file");
    }

    private static String checkPort(String port) throws Failure {
        for (int i = 0; i < port.length(); i++) {
            if (port.charAt(i) < '0' || port.charAt(i) > '9') throw new Failure("the port is not a number");
        }
        if (!port.isEmpty() && Long.parseLong(port.length() > 6 ? "999999" : port) > 65535) throw new Failure("the port is over 65535");
        return port;
    }

    private static String opaqueHost(String host) throws Failure {
        if (host.startsWith("[")) return ipv6(host);
        for (int i = 0; i < host.length(); i++) {
            if (FORBIDDEN_HOST.indexOf(host.charAt(i)) >= 0) throw new Failure("forbidden character in the host");
        }
        return host;
    }

    private static String domain(String host) throws Failure {
        if (host.isEmpty()) throw new Failure("no host");
        if (host.startsWith("[")) return ipv6(host);
        String decoded = FormUrlEncoded.percentDecode(host, false).toLowerCase(Locale.ROOT);
        for (int i = 0; i < decoded.length(); i++) {
            char c = decoded.charAt(i);
            if (c < 0x20 || c == '%' || c == 0x7f || FORBIDDEN_HOST.indexOf(c) >= 0) throw new Failure("forbidden character in the host");
        }
        if (endsInANumber(decoded)) checkIpv4(decoded);
        return decoded;
    }

    private static String ipv6(String host) throws Failure {
        String inner = host.substring(1, host.length() - 1);
        if (inner.indexOf(':') < 0) throw new Failure("bad IPv6 address");
        for (int i = 0; i < inner.length(); i++) {
            char c = inner.charAt(i);
            if (Character.digit(c, 16) < 0 && c != ':' && c != '.') throw new Failure("bad IPv6 address");
        }
        return host.toLowerCase(Locale.ROOT);
    }

    private static boolean endsInANumber(String host) {
        String trimmed = host.endsWith(".") ? host.substring(0, host.length() - 1) : host;
        String last = trimmed.substring(trimmed.lastIndexOf('.') + 1);
        if (last.isEmpty()) return false;
        for (int i = 0; i < last.length(); i++) {
            if (last.charAt(i) < '0' || last.charAt(i) > '9') return false;
        }
        return true;
    }

    private static void checkIpv4(String host) throws Failure {
        String trimmed = host.endsWith(".") ? host.substring(0, host.length() - 1) : host;
        String[] parts = trimmed.split("\\.", -1);
        if (parts.length > 4) throw new Failure("bad IPv4 address");
        for (int i = 0; i < parts.length; i++) {
            String part = parts[i];
            if (part.isEmpty() || part.length() > 10 || !part.chars().allMatch(c -> c >= '0' && c <= '9')) {
                throw new Failure("bad IPv4 address");
            }
            long value = Long.parseLong(part);
            long limit = i == parts.length - 1 ? (1L << (8 * (5 - parts.length))) : 256;
            if (value >= limit) throw new Failure("bad IPv4 address");
        }
    }

    private static int indexOfAny(String s, int from, String chars) {
        for (int i = from; i < s.length(); i++) {
            if (chars.indexOf(s.charAt(i)) >= 0) return i;
        }
        return s.length();
    }

    private static boolean isAsciiAlpha(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    }
}
