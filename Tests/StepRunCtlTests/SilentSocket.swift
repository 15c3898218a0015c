import Foundation
import StepRunCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A listening Unix socket that never accepts: connections land in its backlog and wait forever,
/// the way a hung daemon looks to a client.
struct SilentSocket {
    let path: String
    private let descriptor: Int32

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("steprunctl-silent-\(UUID().uuidString.prefix(8)).sock").path
        #if canImport(Glibc)
        descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #else
        descriptor = socket(AF_UNIX, SOCK_STREAM, 0)
        #endif
        guard descriptor >= 0 else { throw StepRunError.internal("socket: \(String(cString: strerror(errno)))") }
        guard let address = UnixSocketAddress(path: path) else {
            closeDescriptor(descriptor)
            throw StepRunError.internal("socket path too long: \(path)")
        }
        let bound = address.withSockaddr { bind(descriptor, $0, $1) }
        guard bound == 0, listen(descriptor, 16) == 0 else {
            let reason = String(cString: strerror(errno))
            closeDescriptor(descriptor)
            throw StepRunError.internal("bind/listen \(path): \(reason)")
        }
    }

    func close() {
        closeDescriptor(descriptor)
        unlink(path)
    }
}

/// close(2), out of reach of `SilentSocket.close()`'s name.
private func closeDescriptor(_ descriptor: Int32) {
    _ = close(descriptor)
}
