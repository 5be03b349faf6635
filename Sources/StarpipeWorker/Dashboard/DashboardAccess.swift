import Crypto
import Foundation

/// Who may read the dashboard. Bound to loopback without a token, anyone who can reach the port may (the machine's
/// own users); with a token, and always when bound beyond loopback, a request must carry it: `Authorization: Bearer
/// TOKEN`, or `?token=TOKEN` once in the browser, after which a cookie (``cookieName``) carries it.
public struct DashboardAccess: Sendable {
    /// The cookie that carries the token after `?token=`. HttpOnly and SameSite=Strict.
    public static let cookieName = "starpipe_dashboard"

    /// The digest of the token; nil when the dashboard is open (loopback only).
    private let tokenDigest: [UInt8]?

    /// Whether a token is required.
    public var requiresToken: Bool { tokenDigest != nil }

    /// Refuses a non-loopback `host` without a token, and a token that is short or that a cookie cannot carry.
    public init(host: String, token: String?) throws {
        if let token {
            guard token.utf8.count >= 16, token.utf8.allSatisfy({ Self.tokenCharacters.contains($0) }) else {
                throw DashboardServerError("--dashboard-token takes at least 16 characters of A-Z a-z 0-9 . _ ~ -")
            }
            tokenDigest = Array(SHA256.hash(data: Data(token.utf8)))
        } else {
            guard Self.isLoopback(host) else {
                throw DashboardServerError("--dashboard-listen \(host) is beyond loopback: give --dashboard-token (or STARPIPE_DASHBOARD_TOKEN)")
            }
            tokenDigest = nil
        }
    }

    /// Whether `presented` is the token, compared in constant time (both sides hashed first, so neither the
    /// position of the first difference nor the token's length shows in the time taken). Always true when open.
    public func admits(_ presented: String?) -> Bool {
        guard let tokenDigest else { return true }
        guard let presented else { return false }
        let digest = Array(SHA256.hash(data: Data(presented.utf8)))
        var difference: UInt8 = 0
        for (a, b) in zip(digest, tokenDigest) { difference |= a ^ b }
        return difference == 0
    }

    /// The token of an `Authorization: Bearer TOKEN` header, or nil.
    public static func bearer(_ header: String?) -> String? {
        guard let header else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return parts[1].trimmingCharacters(in: .whitespaces)
    }

    /// `localhost`, `127.0.0.0/8` or `::1`: addresses only this machine reaches. `0.0.0.0` and `::` are not.
    public static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    private static let tokenCharacters = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-".utf8)
}
