#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A Unix-domain socket address filled from a path, for the places that call bind, connect or
/// sendto themselves (steprund's sd_notify and stale-socket probe, and the tests' raw peers):
/// one definition of how `sockaddr_un` is filled, instead of one per caller.
public struct UnixSocketAddress {
    private var address = sockaddr_un()
    /// The length to pass with the address: the whole structure, or for an abstract name exactly
    /// the family and its bytes (the kernel counts every byte of an abstract name).
    public let length: socklen_t

    /// nil when `path` does not fit `sun_path` with its terminating zero. With `abstract`, a
    /// leading "@" names Linux's abstract namespace (as `$NOTIFY_SOCKET` may).
    public init?(path: String, allowingAbstract abstract: Bool = false) {
        var bytes = Array(path.utf8)
        let isAbstract = abstract && bytes.first == UInt8(ascii: "@")
        if isAbstract { bytes[0] = 0 }
        address.sun_family = sa_family_t(AF_UNIX)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in bytes.enumerated() { buffer[index] = byte }
            buffer[bytes.count] = 0
        }
        length = isAbstract
            ? socklen_t(MemoryLayout<sa_family_t>.size + bytes.count) : socklen_t(MemoryLayout<sockaddr_un>.size)
    }

    /// Calls `body` with the address as the `sockaddr` the socket calls take, and its length.
    public func withSockaddr<Result>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> Result) rethrows -> Result {
        try withUnsafePointer(to: address) {
            try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, length) }
        }
    }
}
