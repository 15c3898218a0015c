/// Constants of the steprund wire protocol (docs/PROTOCOL.md).
public enum WireProtocol {
    /// The protocol version this library speaks; sent in `Hello` and `HelloReply`.
    public static let version: UInt32 = 1
    /// The largest frame body (the bytes after the 4-byte length prefix) accepted by default: 4 MiB.
    public static let defaultMaxFrameBytes = 4 << 20
    /// Bytes of the big-endian length prefix in front of every frame.
    public static let lengthPrefixBytes = 4
}
