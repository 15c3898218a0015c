#if canImport(Glibc)
import Glibc
#endif
import NIOCore

/// Who is on the other end of a Unix socket, as the kernel reports it (SO_PEERCRED).
struct PeerCredentials: Sendable {
    var pid: Int32
    var uid: UInt32
    var gid: UInt32

    static func of(_ channel: any Channel) -> EventLoopFuture<PeerCredentials> {
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(ChannelError.operationUnsupported)
        }
        let future: EventLoopFuture<KernelCredentials> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(peerCredentialsOption))
        return future.map { PeerCredentials(pid: $0.pid, uid: $0.uid, gid: $0.gid) }
    }

    /// True when the allow-lists (if any) admit this peer.
    func isAllowed(uids: Set<UInt32>?, gids: Set<UInt32>?) -> Bool {
        if uids == nil && gids == nil { return true }
        return uids?.contains(uid) == true || gids?.contains(gid) == true
    }
}

/// `struct ucred` from <sys/socket.h> (pid_t, uid_t, gid_t: three 32-bit fields). Glibc only
/// declares it under _GNU_SOURCE, which Swift's Glibc module does not set, so it is spelled out here.
struct KernelCredentials: Sendable {
    var pid: Int32
    var uid: UInt32
    var gid: UInt32
}

/// SO_PEERCRED on Linux (asm-generic/socket.h), likewise hidden behind _GNU_SOURCE.
private let peerCredentialsOption: Int32 = 17

/// A Unix peer refused by the allow-list.
struct PeerNotAllowedError: Error {}
