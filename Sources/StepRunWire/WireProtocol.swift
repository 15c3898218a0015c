/// Constants of the steprund wire protocol (docs/PROTOCOL.md).
public enum WireProtocol {
    /// The protocol version this library speaks; sent in `Hello` and `HelloReply`. Version 2 pages
    /// the lists (docs/PROTOCOL.md §6); a connection whose Hello says 1 is served as version 1.
    public static let version: UInt32 = 2
    /// The oldest version a server still serves.
    public static let oldestVersion: UInt32 = 1
    /// The first version whose clients follow `next_page_token` on every list.
    public static let pagingVersion: UInt32 = 2
    /// Bytes of a list response that are not its elements, at most: the envelope (id, result tag
    /// and length) and the next page token. A page's elements get the max frame less this.
    public static let listEnvelopeBytes = 512
    /// The frame limit of version 1 clients (released with 4 MiB frames): a whole list larger
    /// than that is a frame their decoder refuses, closing the connection.
    public static let versionOneMaxFrameBytes = 4 << 20

    /// The bytes a list's elements may take in one response on a connection of `protocolVersion`:
    /// the frame less the list envelope, the frame being the smaller of the server's and, for a
    /// version 1 client, its own — so it gets `page_required` rather than a frame it cannot read.
    public static func listBudget(maxFrameBytes: Int, protocolVersion: UInt32) -> Int {
        let frame = protocolVersion >= pagingVersion ? maxFrameBytes : min(maxFrameBytes, versionOneMaxFrameBytes)
        return max(1, frame - listEnvelopeBytes)
    }
    /// The largest frame body (the bytes after the 4-byte length prefix) accepted by default: 8 MiB,
    /// enough for the largest step run the default 1 MiB payload limit allows (six JSON fields at
    /// the limit; `StoreLimits.maxStepRunBytes`), so every stored row can be read back.
    public static let defaultMaxFrameBytes = 8 << 20
    /// Bytes of the big-endian length prefix in front of every frame.
    public static let lengthPrefixBytes = 4
}
