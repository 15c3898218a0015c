#if canImport(Glibc)
import Glibc
#endif
import Foundation
import StepRunCore
import StepRunTesting

/// Plays systemd's side of sd_notify: a datagram socket that collects what the daemon reports.
final class NotifyListener: @unchecked Sendable {
    // The descriptor is immutable after init and only read by blocking calls on helper threads.
    let path: String
    private let descriptor: Int32

    init() {
        path = temporaryPath("notify") + ".sock"
        descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        _ = UnixSocketAddress(path: path)?.withSockaddr { bind(descriptor, $0, $1) }
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit {
        close(descriptor)
        unlink(path)
    }

    /// The next message, or nil if none arrives within 200 ms.
    func next() async -> String? {
        let descriptor = self.descriptor
        return await withCheckedContinuation { continuation in
            Thread {
                var buffer = [UInt8](repeating: 0, count: 4096)
                let count = recv(descriptor, &buffer, buffer.count, 0)
                continuation.resume(returning: count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self) : nil)
            }.start()
        }
    }

    /// Waits up to `timeout` for a message containing `text`; returns every message seen until then.
    func wait(for text: String, timeout: Duration = .seconds(30)) async -> [String] {
        var seen: [String] = []
        let end = ContinuousClock.now.advanced(by: timeout)
        while ContinuousClock.now < end {
            if let message = await next() {
                seen.append(message)
                if message.contains(text) { return seen }
            }
        }
        return seen
    }
}

/// True when something accepts connections on the Unix socket at `path`.
func unixSocketAccepts(_ path: String) -> Bool {
    let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(descriptor) }
    guard let address = UnixSocketAddress(path: path) else { return false }
    return address.withSockaddr { connect(descriptor, $0, $1) } == 0
}

/// A plain HTTP/1.0 GET on 127.0.0.1 (blocking, on its own thread); nil if nothing answers.
func httpGet(port: Int, path: String) async -> String? {
    await withCheckedContinuation { continuation in
        Thread {
            let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(descriptor) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = UInt16(port).bigEndian
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else { return continuation.resume(returning: nil) }
            let request = Array("GET \(path) HTTP/1.0\r\nHost: localhost\r\n\r\n".utf8)
            _ = request.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            var response: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = recv(descriptor, &buffer, buffer.count, 0)
                if count <= 0 { break }
                response += buffer[0..<count]
            }
            continuation.resume(returning: String(decoding: response, as: UTF8.self))
        }.start()
    }
}
