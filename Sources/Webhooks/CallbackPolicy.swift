import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Where webhook deliveries may go (docs/GATEWAY.md, "Callback URLs"): `--callback-allow` entries,
/// checked at submit on the URL's host and again at delivery on every address the host resolves
/// to, so that a name that resolves (or is re-pointed, DNS rebinding) to an internal address
/// cannot turn the gateway against the network it sits in.
///
/// An entry is a host name (`hooks.example.com`), a wildcard (`*.example.com`: any name under it),
/// an address (`203.0.113.7`, `::1`) or a network (`10.0.0.0/8`). A URL's host must match a name
/// entry, or, for an address literal, an address or network entry. Every resolved address must be
/// public (not loopback, private, link-local, shared, multicast or reserved) or match an address
/// or network entry: an internal receiver is allowed only by naming its addresses.
public struct CallbackPolicy: Sendable, CustomStringConvertible {
    enum Entry: Sendable, Equatable {
        case name(String)
        case suffix(String)
        case network([UInt8], prefix: Int)
    }

    let entries: [Entry]
    public let description: String

    /// An entry that does not parse, with why.
    public struct BadEntry: Error, CustomStringConvertible {
        public let description: String
    }

    /// From `--callback-allow` values, each one entry or several separated by commas.
    public init(allowing values: [String]) throws(BadEntry) {
        var entries: [Entry] = []
        for value in values.flatMap({ $0.split(separator: ",") }) {
            let text = value.trimmingCharacters(in: .whitespaces).lowercased()
            guard !text.isEmpty else { continue }
            if let slash = text.firstIndex(of: "/") {
                guard let address = Self.address(String(text[..<slash])), let bits = Int(text[text.index(after: slash)...]),
                      (0...(address.count * 8)).contains(bits) else {
                    throw BadEntry(description: "--callback-allow '\(text)' is not a network: write ADDRESS/BITS, such as 10.0.0.0/8 or fd00::/8")
                }
                entries.append(.network(address, prefix: bits))
            } else if let address = Self.address(text) {
                entries.append(.network(address, prefix: address.count * 8))
            } else if text.hasPrefix("*.") {
                entries.append(.suffix(String(text.dropFirst(1))))
            } else if text.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." }), !text.contains("*") {
                entries.append(.name(text))
            } else {
                throw BadEntry(description: "--callback-allow '\(text)' is not a host name, *.domain, an address or ADDRESS/BITS")
            }
        }
        self.entries = entries
        description = values.joined(separator: ",")
    }

    public var isEmpty: Bool { entries.isEmpty }

    /// The host of a callback URL, lowercased, without brackets; `nil` if the URL has none.
    public static func host(of url: String) -> String? {
        guard let components = URLComponents(string: url), let host = components.host, !host.isEmpty else { return nil }
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        return bare.lowercased()
    }

    /// Why a task may not have this callback URL (at submit); `nil` when it may.
    public func problem(url: String) -> String? {
        guard let host = Self.host(of: url) else { return "callback_url has no host" }
        guard !entries.isEmpty else {
            return "callback_url is not allowed: this gateway allows no callback hosts (start it with --callback-allow HOST)"
        }
        if let address = Self.address(host) {
            guard allows(address: address) else {
                return "callback_url host \(host) is not on this gateway's --callback-allow list (\(description))"
            }
            return nil
        }
        let allowed = entries.contains { entry in
            switch entry {
            case .name(let name): host == name
            case .suffix(let suffix): host.hasSuffix(suffix)
            case .network: false
            }
        }
        return allowed ? nil : "callback_url host \(host) is not on this gateway's --callback-allow list (\(description))"
    }

    /// Why a delivery may not connect to `address` (at delivery, for each resolved address).
    public func problem(address: [UInt8], of host: String) -> String? {
        if allows(address: address) || !Self.isInternal(address) { return nil }
        return "\(host) resolves to \(Self.text(address)), an internal address not on --callback-allow (name the address or its network there to allow it)"
    }

    private func allows(address: [UInt8]) -> Bool {
        entries.contains { entry in
            guard case .network(let network, let bits) = entry, network.count == address.count else { return false }
            return Self.matches(address, network, bits: bits)
        }
    }

    // MARK: Addresses

    /// 4 or 16 bytes for an IPv4 or IPv6 literal; `nil` for anything else.
    public static func address(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    static func text(_ address: [UInt8]) -> String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = address.count == 4 ? AF_INET : AF_INET6
        _ = address.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &buffer, socklen_t(buffer.count)) }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func matches(_ address: [UInt8], _ network: [UInt8], bits: Int) -> Bool {
        for index in 0..<address.count {
            let remaining = bits - index * 8
            if remaining <= 0 { return true }
            let mask: UInt8 = remaining >= 8 ? 0xFF : ~(0xFF >> UInt8(remaining))
            if address[index] & mask != network[index] & mask { return false }
        }
        return true
    }

    /// Loopback, private, link-local, shared (CGNAT), multicast, unspecified, documentation and
    /// reserved ranges; IPv4-mapped and NAT64 IPv6 addresses by their IPv4 part.
    static func isInternal(_ address: [UInt8]) -> Bool {
        if address.count == 4 {
            let ranges: [([UInt8], Int)] = [
                ([0, 0, 0, 0], 8), ([10, 0, 0, 0], 8), ([100, 64, 0, 0], 10), ([127, 0, 0, 0], 8), ([169, 254, 0, 0], 16),
                ([172, 16, 0, 0], 12), ([192, 0, 0, 0], 24), ([192, 0, 2, 0], 24), ([192, 168, 0, 0], 16), ([198, 18, 0, 0], 15),
                ([198, 51, 100, 0], 24), ([203, 0, 113, 0], 24), ([224, 0, 0, 0], 4), ([240, 0, 0, 0], 4),
            ]
            return ranges.contains { matches(address, $0.0, bits: $0.1) }
        }
        guard address.count == 16 else { return true }
        let mapped: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0, 0, 0]
        let nat64: [UInt8] = [0x00, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        if matches(address, mapped, bits: 96) || matches(address, nat64, bits: 96) { return isInternal(Array(address[12...])) }
        let ranges: [([UInt8], Int)] = [
            ([UInt8](repeating: 0, count: 16), 127), // :: and ::1
            ([0xFC] + [UInt8](repeating: 0, count: 15), 7), // unique local
            ([0xFE, 0x80] + [UInt8](repeating: 0, count: 14), 10), // link-local
            ([0xFF] + [UInt8](repeating: 0, count: 15), 8), // multicast
            ([0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 12), 32), // documentation
        ]
        return ranges.contains { matches(address, $0.0, bits: $0.1) }
    }

    /// Every address `host` resolves to (getaddrinfo, on a thread of its own: it blocks).
    public static func resolve(_ host: String) async -> [[UInt8]] {
        if let literal = address(host) { return [literal] }
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var hints = addrinfo()
                hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
                var list: UnsafeMutablePointer<addrinfo>?
                var found: [[UInt8]] = []
                if getaddrinfo(host, nil, &hints, &list) == 0 {
                    var next = list
                    while let entry = next {
                        if let raw = entry.pointee.ai_addr {
                            if entry.pointee.ai_family == AF_INET {
                                var v4 = raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                                found.append(withUnsafeBytes(of: &v4) { Array($0) })
                            } else if entry.pointee.ai_family == AF_INET6 {
                                var v6 = raw.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                                found.append(withUnsafeBytes(of: &v6) { Array($0) })
                            }
                        }
                        next = entry.pointee.ai_next
                    }
                    freeaddrinfo(list)
                }
                var unique: [[UInt8]] = []
                for address in found where !unique.contains(address) { unique.append(address) }
                continuation.resume(returning: unique)
            }
        }
    }
}
