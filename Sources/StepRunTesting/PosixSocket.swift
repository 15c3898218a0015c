#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NIOCore
import NIOPosix
import StepRunCore
import StepRunWire

/// A plain blocking Unix-domain socket, for peers that misbehave at the byte level (never read,
/// never answer) in ways an event-loop client cannot easily imitate.
///
/// Each blocking call runs on a thread of its own (`onOwnThread`): blocking the test's own task
/// would stall the in-process daemon, whose request tasks share the (two-thread, on this machine)
/// cooperative pool — and so would a shared pool of two threads (NIO's), where one test's
/// 10-second read could hold back another test's hello past that daemon's idle timeout.
public final class PosixSocket: Sendable {
    public let descriptor: Int32

    private init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    deinit {
        Glibc.close(descriptor)
    }

    /// Connects to a listening Unix socket; reads time out after `receiveTimeout`.
    public static func connect(unixPath path: String, receiveTimeout: Duration = .seconds(10)) throws -> PosixSocket {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw StepRunError.internal("socket() failed") }
        let connection = PosixSocket(descriptor: descriptor)
        let result = try unixAddress(path).withSockaddr { Glibc.connect(descriptor, $0, $1) }
        guard result == 0 else { throw StepRunError.unavailable("connect(\(path)) failed: errno \(errno)") }
        var timeout = timeval(tv_sec: Int(receiveTimeout.components.seconds), tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return connection
    }

    /// A Unix socket that accepts connections into its backlog and never reads or answers: a hung daemon.
    public static func silentListener(unixPath path: String) throws -> PosixSocket {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw StepRunError.internal("socket() failed") }
        let listener = PosixSocket(descriptor: descriptor)
        let bound = try unixAddress(path).withSockaddr { bind(descriptor, $0, $1) }
        guard bound == 0, listen(descriptor, 64) == 0 else { throw StepRunError.internal("bind/listen(\(path)) failed: errno \(errno)") }
        return listener
    }

    private static func unixAddress(_ path: String) throws -> UnixSocketAddress {
        guard let address = UnixSocketAddress(path: path) else { throw StepRunError.internal("path too long") }
        return address
    }

    /// Writes every byte, waiting as needed.
    public func writeAll(_ bytes: [UInt8]) async throws {
        try await onOwnThread { try self.blockingWriteAll(bytes) }
    }

    private func blockingWriteAll(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { throw StepRunError.unavailable("send failed: errno \(errno)") }
            offset += written
        }
    }

    /// Writes what the socket takes right now without blocking; returns the number of bytes taken.
    public func writeWithoutBlocking(_ bytes: ArraySlice<UInt8>) -> Int {
        let written = bytes.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
        return max(0, written)
    }

    /// Reads exactly `count` bytes; nil on end of file or timeout.
    private func read(count: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let received = bytes[offset...].withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            guard received > 0 else { return nil }
            offset += received
        }
        return bytes
    }

    /// Reads one response frame; nil on end of file or timeout.
    public func readResponse() async throws -> ResponseFrame? {
        let body: [UInt8]? = try await onOwnThread {
            guard let prefix = self.read(count: 4) else { return nil }
            return self.read(count: prefix.reduce(0) { $0 << 8 | Int($1) })
        }
        guard let body else { return nil }
        return try WireCodec.decodeResponse(ByteBuffer(bytes: body))
    }

    /// True when the peer has closed the connection (anything it sent first is discarded).
    public func peerClosed() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(descriptor, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if count == 0 { return true }
            if count < 0 { return errno == ECONNRESET }
        }
    }

    /// Sends a Hello and waits for the HelloReply.
    public func hello(token: String? = nil) async throws {
        var buffer = ByteBuffer()
        WireCodec.encodeRequest(RequestFrame(id: 1, call: .hello(Hello(clientName: "posix", token: token))), into: &buffer)
        try await writeAll(Array(buffer.readableBytesView))
        guard case .success(.hello)? = try await readResponse()?.outcome else { throw StepRunError.internal("handshake failed") }
    }
}

/// Runs a blocking `body` on a new thread and waits for it without blocking the caller's.
private func onOwnThread<Value: Sendable>(_ body: @escaping @Sendable () throws -> Value) async throws -> Value {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}
