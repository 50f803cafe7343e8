package org.otpgate.core;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Does a server certificate name the host we dialled? The rules of Node's
 * X509Certificate.checkHost/checkIP, which the phone simulator uses: DNS names
 * from subjectAltName (a '*' only as the whole left-most label), the subject CN
 * only when there are no DNS names, IP addresses only from iPAddress entries.
 */
final class HostnameMatcher {
    private static final int SAN_DNS = 2;
    private static final int SAN_IP = 7;
    private static final Pattern IPV4 = Pattern.compile("\\d{1,3}(\\.\\d{1,3}){3}");
    private static final Pattern CN = Pattern.compile("(?:^|,)\\s*CN=([^,]*)");

    private HostnameMatcher() {}

    static boolean matches(X509Certificate certificate, String host) {
        String name = host.toLowerCase(Locale.ROOT);
        if (name.endsWith(".")) name = name.substring(0, name.length() - 1);
        byte[] ip = ipLiteral(name);
        if (ip != null) return namesIp(certificate, ip);
        List<String> dnsNames = altNames(certificate, SAN_DNS);
        if (dnsNames.isEmpty()) {
            Matcher cn = CN.matcher(certificate.getSubjectX500Principal().getName());
            if (cn.find()) dnsNames.add(cn.group(1));
        }
        for (String pattern : dnsNames) {
            if (dnsMatches(pattern.toLowerCase(Locale.ROOT), name)) return true;
        }
        return false;
    }

    private static boolean dnsMatches(String pattern, String host) {
        if (pattern.endsWith(".")) pattern = pattern.substring(0, pattern.length() - 1);
        if (!pattern.startsWith("*.")) return pattern.equals(host);
        // "*.example.com" covers exactly one label: a.example.com, not example.com nor a.b.example.com.
        int firstDot = host.indexOf('.');
        return firstDot > 0 && host.substring(firstDot).equals(pattern.substring(1)) && pattern.indexOf('.', 2) > 0;
    }

    private static boolean namesIp(X509Certificate certificate, byte[] ip) {
        for (String entry : altNames(certificate, SAN_IP)) {
            byte[] candidate = ipLiteral(entry.toLowerCase(Locale.ROOT));
            if (candidate != null && Arrays.equals(candidate, ip)) return true;
        }
        return false;
    }

    /** The address bytes of an IPv4 or IPv6 literal, or null for a name (never a DNS look-up). */
    private static byte[] ipLiteral(String host) {
        boolean literal = IPV4.matcher(host).matches() || (host.indexOf(':') >= 0 && host.matches("[0-9a-f:.]+"));
        if (!literal) return null;
        try {
            return InetAddress.getByName(host).getAddress();
        } catch (UnknownHostException e) {
            return null;
        }
    }

    private static List<String> altNames(X509Certificate certificate, int type) {
        List<String> out = new ArrayList<>();
        Collection<List<?>> names;
        try {
            names = certificate.getSubjectAlternativeNames();
        } catch (CertificateParsingException e) {
            return out;
        }
        if (names == null) return out;
        for (List<?> entry : names) {
            if (entry.size() >= 2 && entry.get(0) instanceof Integer && (Integer) entry.get(0) == type && entry.get(1) instanceof String) {
                out.add((String) entry.get(1));
            }
        }
        return out;
    }
}
