import CStepRunProto
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Memory for the C message tree of one encode.
///
/// protobuf-c packs from plain C structs linked by pointers. Building that tree out of Swift values
/// needs many small allocations whose lifetimes all end together, right after packing; a bump
/// allocator gives them one owner, so nothing can leak or be freed twice whatever path the encoder
/// takes. Only `WireCodec` creates one, with `defer { arena.release() }`.
final class EncodeArena {
    /// The first block: small enough for malloc's per-thread cache (glibc serves chunks up to
    /// 1,032 bytes from it), and enough for a typical answer or request with 100-byte payloads.
    /// Larger requests to malloc make glibc merge its free lists (`malloc_consolidate`) first,
    /// which an encode paid on every call when the first block was 32 KiB.
    private static let firstBlockBytes = 1_000
    /// Later blocks double up to this size; an allocation over a quarter of it gets its own block.
    private static let largestBlockBytes = 32 * 1024
    /// Every block allocated, in order; freed together by `release`.
    private var blocks: [UnsafeMutableRawPointer] = []
    private var cursor: UnsafeMutableRawPointer?
    private var remaining = 0
    private var nextBlockBytes = firstBlockBytes

    deinit {
        release()
    }

    /// Frees every allocation; the arena may be reused afterwards.
    func release() {
        for block in blocks {
            free(block)
        }
        blocks.removeAll(keepingCapacity: true)
        cursor = nil
        remaining = 0
        nextBlockBytes = Self.firstBlockBytes
    }

    /// Uninitialized memory, aligned to 16 bytes (enough for every C scalar and pointer).
    func allocate(byteCount: Int) -> UnsafeMutableRawPointer {
        let size = max(16, (byteCount + 15) & ~15)
        if size > Self.largestBlockBytes / 4 {
            // Large payloads get a block of their own so they don't waste the rest of a shared one.
            return newBlock(size)
        }
        if size > remaining {
            while nextBlockBytes < size { nextBlockBytes *= 2 }
            let block = newBlock(nextBlockBytes)
            cursor = block
            remaining = nextBlockBytes
            nextBlockBytes = min(nextBlockBytes * 2, Self.largestBlockBytes)
        }
        let pointer = cursor!
        cursor = pointer + size
        remaining -= size
        return pointer
    }

    /// glibc's malloc aligns to 16 bytes on 64-bit Linux and, unlike an aligned allocation
    /// (`posix_memalign`, which `UnsafeMutableRawPointer.allocate(byteCount:alignment:)` uses
    /// for 16), serves small sizes from its per-thread cache.
    private func newBlock(_ byteCount: Int) -> UnsafeMutableRawPointer {
        guard let block = malloc(byteCount) else { fatalError("out of memory: an encode needed \(byteCount) bytes") }
        assert(Int(bitPattern: block) & 15 == 0, "malloc returned memory aligned to less than 16 bytes")
        blocks.append(block)
        return block
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

    /// A protobuf-c repeated message field: one message per element, made by `message`.
    func list<Element, Message>(
        _ elements: [Element], of _: Message.Type, _ message: (Element) -> UnsafeMutablePointer<Message>
    ) -> UnsafeMutablePointer<UnsafeMutablePointer<Message>?> {
        let list = pointers(to: Message.self, count: elements.count)
        for (index, element) in elements.enumerated() {
            list[index] = message(element)
        }
        return list
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
