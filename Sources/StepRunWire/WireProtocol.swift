/// Constants of the steprund wire protocol (docs/PROTOCOL.md).
public enum WireProtocol {
    /// The protocol version this library speaks; sent in `Hello` and `HelloReply`.
    public static let version: UInt32 = 1
    /// The largest frame body (the bytes after the 4-byte length prefix) accepted by default: 8 MiB,
    /// enough for the largest step run the default 1 MiB payload limit allows (six JSON fields at
    /// the limit; `StoreLimits.maxStepRunBytes`), so every stored row can be read back.
    public static let defaultMaxFrameBytes = 8 << 20
    /// Bytes of the big-endian length prefix in front of every frame.
    public static let lengthPrefixBytes = 4
}
