#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import ServiceLifecycle
import StepRunCore
import StepRunServer

/// The service-manager protocols steprund speaks: sd_notify and socket activation. Written here
/// rather than linked from libsystemd so the daemon has no extra runtime dependency.
enum Systemd {
    /// Sends `state` (e.g. `READY=1\nSTATUS=…`) to `$NOTIFY_SOCKET`; does nothing outside systemd.
    static func notify(_ state: String, environment: [String: String] = ProcessInfo.processInfo.environment) {
        guard let path = environment["NOTIFY_SOCKET"], !path.isEmpty else { return }
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        guard let address = UnixSocketAddress(path: path, allowingAbstract: true) else { return }
        let message = Array(state.utf8)
        _ = address.withSockaddr { socketAddress, length in
            message.withUnsafeBytes { sendto(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), socketAddress, length) }
        }
    }

    /// How often systemd expects `WATCHDOG=1` (half of `WatchdogSec=`), or nil when it does not.
    static func watchdogInterval(environment: [String: String] = ProcessInfo.processInfo.environment) -> Duration? {
        guard let text = environment["WATCHDOG_USEC"], let micros = Int64(text), micros > 0 else { return nil }
        if let pid = environment["WATCHDOG_PID"], Int32(pid) != getpid() { return nil }
        return .microseconds(micros / 2)
    }

    /// Listening sockets passed by socket activation (`LISTEN_FDS`), sorted into Unix and TCP.
    struct InheritedSockets {
        var unix: Int32?
        var tcp: Int32?
        var isEmpty: Bool { unix == nil && tcp == nil }
    }

    static func inheritedSockets(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> InheritedSockets {
        var sockets = InheritedSockets()
        guard let countText = environment["LISTEN_FDS"], let count = Int32(countText), count > 0 else { return sockets }
        if let pid = environment["LISTEN_PID"], Int32(pid) != getpid() { return sockets }
        for descriptor in Int32(3)..<(3 + count) {
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let result = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
            }
            guard result == 0 else { throw DaemonError("inherited descriptor \(descriptor) is not a socket") }
            switch Int32(storage.ss_family) {
            case AF_UNIX:
                guard sockets.unix == nil else { throw DaemonError("socket activation passed more than one Unix socket") }
                sockets.unix = descriptor
            case AF_INET, AF_INET6:
                guard sockets.tcp == nil else { throw DaemonError("socket activation passed more than one TCP socket") }
                sockets.tcp = descriptor
            default:
                throw DaemonError("inherited descriptor \(descriptor) has unsupported address family \(storage.ss_family)")
            }
        }
        return sockets
    }
}

/// Tells systemd when the daemon is ready, keeps its watchdog fed, and says when it is stopping.
struct SystemdNotifyService: Service {
    let server: StepRunServer
    let logger: Logger

    func run() async throws {
        let bound = try await server.listening()
        var listeners: [String] = []
        if let path = bound.unixSocketPath { listeners.append("unix:\(path)") }
        if let port = bound.tcpPort { listeners.append("tcp:\(bound.tcpHost ?? "*"):\(port)") }
        Systemd.notify("READY=1\nSTATUS=serving on \(listeners.joined(separator: ", "))\nMAINPID=\(getpid())")
        if let interval = Systemd.watchdogInterval() {
            logger.debug("systemd watchdog enabled", metadata: ["interval": "\(interval)"])
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                Systemd.notify("WATCHDOG=1")
                try? await Task.sleep(for: interval)
            }
        } else {
            try? await gracefulShutdown()
        }
        Systemd.notify("STOPPING=1\nSTATUS=draining in-flight requests")
    }
}
