#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import StepRunCore

/// Prepares the path a Unix listener binds to.
enum UnixSocketFile {
    /// Takes `<path>.lock` (an exclusive `flock`) for as long as this daemon owns the socket path,
    /// so that two daemons started at once cannot both find the socket stale and replace each
    /// other's. Returns the descriptor to pass to `unlock(_:)`; the file itself stays, as lock files do.
    static func lock(_ path: String) throws(StepRunError) -> Int32 {
        let lockPath = path + ".lock"
        let descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw .failedPrecondition("cannot open \(lockPath): \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let reason = errno
            close(descriptor)
            if reason == EWOULDBLOCK {
                throw .failedPrecondition("another steprund holds \(lockPath): it is starting or serving on \(path)")
            }
            throw .failedPrecondition("cannot lock \(lockPath): \(String(cString: strerror(reason)))")
        }
        return descriptor
    }

    /// Releases a lock taken by `lock(_:)`. Explicitly: closing alone releases an `flock` only once
    /// every copy of the descriptor is closed, and a child process being spawned at that moment
    /// holds a copy until its `exec` closes it (`O_CLOEXEC`) — long enough for a daemon started
    /// right after this one stopped to find the path still locked.
    static func unlock(_ descriptor: Int32) {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }

    /// Removes a socket file left by a crashed daemon; refuses if a live daemon still answers on it.
    static func reclaim(_ path: String) throws(StepRunError) {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }  // nothing there
        guard (status.st_mode & S_IFMT) == S_IFSOCK else {
            throw .failedPrecondition("\(path) exists and is not a socket; refusing to replace it")
        }
        if isAlive(path) {
            throw .failedPrecondition("another process is serving on \(path); refusing to take over its socket")
        }
        guard unlink(path) == 0 || errno == ENOENT else {
            throw .failedPrecondition("cannot remove the stale socket \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Sets the socket file's permissions after binding.
    static func setMode(_ path: String, _ mode: UInt16) throws(StepRunError) {
        guard chmod(path, mode_t(mode)) == 0 else {
            throw .failedPrecondition("cannot set the mode of \(path): \(String(cString: strerror(errno)))")
        }
    }

    private static func isAlive(_ path: String) -> Bool {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        guard let address = UnixSocketAddress(path: path) else { return false }
        let result = address.withSockaddr { connect(descriptor, $0, $1) }
        return result == 0
    }
}
