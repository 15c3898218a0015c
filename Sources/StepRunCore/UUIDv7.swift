import Foundation

extension UUID {
    /// A time-ordered UUID (RFC 9562 version 7): 48 bits of Unix milliseconds, 12 bits of the
    /// millisecond's fraction (RFC 9562 §6.2, method 3: ids made within one millisecond still sort
    /// by time), then 62 random bits — one `getrandom` call per id.
    ///
    /// Step run ids are generated this way so that rows inserted together sit together in the
    /// primary-key index.
    public static func v7(now: Date = Date()) -> UUID {
        let milliseconds = max(0, now.timeIntervalSince1970 * 1000)
        let whole = UInt64(milliseconds)
        let fraction = UInt64((milliseconds - Double(whole)) * 4096) & 0xFFF
        var generator = SystemRandomNumberGenerator()
        let random = generator.next() as UInt64
        let high = (whole & 0xFFFF_FFFF_FFFF) << 16 | 0x7000 | fraction  // version 7
        let low = random & 0x3FFF_FFFF_FFFF_FFFF | 0x8000_0000_0000_0000  // RFC 9562 variant
        func byte(_ word: UInt64, _ index: UInt64) -> UInt8 { UInt8(truncatingIfNeeded: word >> (56 - 8 * index)) }
        return UUID(uuid: (
            byte(high, 0), byte(high, 1), byte(high, 2), byte(high, 3), byte(high, 4), byte(high, 5), byte(high, 6), byte(high, 7),
            byte(low, 0), byte(low, 1), byte(low, 2), byte(low, 3), byte(low, 4), byte(low, 5), byte(low, 6), byte(low, 7)
        ))
    }

    /// The 16 raw bytes, as they travel on the wire.
    public var bytes: [UInt8] {
        withUnsafeBytes(of: uuid) { Array($0) }
    }

    /// Reads 16 raw bytes; nil for any other length.
    @inlinable  // specialised where it is called: no generic dispatch, no array, per UUID read
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 16 else { return nil }
        var value: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &value) { $0.copyBytes(from: bytes) }
        self.init(uuid: value)
    }
}
