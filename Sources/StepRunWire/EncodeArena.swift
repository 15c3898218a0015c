import CStepRunProto

/// Memory for the C message tree of one encode.
///
/// protobuf-c packs from plain C structs linked by pointers. Building that tree out of Swift values
/// needs many small allocations whose lifetimes all end together, right after packing; a bump
/// allocator gives them one owner, so nothing can leak or be freed twice whatever path the encoder
/// takes. Only `WireCodec` creates one, with `defer { arena.release() }`.
final class EncodeArena {
    private static let blockBytes = 32 * 1024
    private var blocks: [UnsafeMutableRawPointer] = []
    private var cursor: UnsafeMutableRawPointer?
    private var remaining = 0

    deinit {
        release()
    }

    /// Frees every allocation; the arena may be reused afterwards.
    func release() {
        for block in blocks {
            block.deallocate()
        }
        blocks.removeAll()
        cursor = nil
        remaining = 0
    }

    /// Uninitialized memory, aligned to 16 bytes (enough for every C scalar and pointer).
    func allocate(byteCount: Int) -> UnsafeMutableRawPointer {
        let size = max(16, (byteCount + 15) & ~15)
        if size > Self.blockBytes / 4 {
            // Large payloads get a block of their own so they don't waste the rest of a shared one.
            let block = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
            blocks.append(block)
            return block
        }
        if size > remaining {
            let block = UnsafeMutableRawPointer.allocate(byteCount: Self.blockBytes, alignment: 16)
            blocks.append(block)
            cursor = block
            remaining = Self.blockBytes
        }
        let pointer = cursor!
        cursor = pointer + size
        remaining -= size
        return pointer
    }

    /// A C message struct, initialised by its generated `…__init` function.
    func message<Message>(_ initialize: (UnsafeMutablePointer<Message>) -> Void) -> UnsafeMutablePointer<Message> {
        let pointer = allocate(byteCount: MemoryLayout<Message>.stride).bindMemory(to: Message.self, capacity: 1)
        initialize(pointer)
        return pointer
    }

    /// An array of `count` message pointers (a protobuf-c repeated message field).
    func pointers<Message>(to _: Message.Type, count: Int) -> UnsafeMutablePointer<UnsafeMutablePointer<Message>?> {
        let pointer = allocate(byteCount: MemoryLayout<UnsafeMutablePointer<Message>?>.stride * max(count, 1))
            .bindMemory(to: UnsafeMutablePointer<Message>?.self, capacity: max(count, 1))
        pointer.initialize(repeating: nil, count: max(count, 1))
        return pointer
    }

    /// An array of `count` binary values (a protobuf-c repeated bytes field).
    func binaries(count: Int) -> UnsafeMutablePointer<ProtobufCBinaryData> {
        let pointer = allocate(byteCount: MemoryLayout<ProtobufCBinaryData>.stride * max(count, 1))
            .bindMemory(to: ProtobufCBinaryData.self, capacity: max(count, 1))
        pointer.initialize(repeating: ProtobufCBinaryData(len: 0, data: nil), count: max(count, 1))
        return pointer
    }

    /// A copy of `bytes` as a protobuf-c `bytes` value.
    func binary(_ bytes: some Collection<UInt8>) -> ProtobufCBinaryData {
        let count = bytes.count
        guard count > 0 else { return ProtobufCBinaryData(len: 0, data: nil) }
        let pointer = allocate(byteCount: count).bindMemory(to: UInt8.self, capacity: count)
        let buffer = UnsafeMutableBufferPointer(start: pointer, count: count)
        let copiedContiguously: Void? = bytes.withContiguousStorageIfAvailable { source in
            _ = buffer.initialize(from: source)
        }
        if copiedContiguously == nil {
            _ = buffer.initialize(from: bytes)
        }
        return ProtobufCBinaryData(len: count, data: pointer)
    }

    /// The UTF-8 text of `text` as a protobuf-c `bytes` value.
    func binary(_ text: String) -> ProtobufCBinaryData {
        binary(text.utf8)
    }

    /// A NUL-terminated copy of `text` for a protobuf-c `string` field.
    ///
    /// protobuf-c measures these with `strlen`, so text after an embedded NUL is not sent. Only free
    /// text (messages, names for logs, tokens) travels in `string` fields; names that select data are
    /// `bytes` fields for exactly this reason.
    func cString(_ text: String) -> UnsafeMutablePointer<CChar> {
        let utf8 = text.utf8
        let pointer = allocate(byteCount: utf8.count + 1).bindMemory(to: CChar.self, capacity: utf8.count + 1)
        var index = 0
        for byte in utf8 {
            pointer[index] = CChar(bitPattern: byte)
            index += 1
        }
        pointer[index] = 0
        return pointer
    }
}
