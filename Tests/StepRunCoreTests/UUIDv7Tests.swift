import Foundation
import StepRunCore
import Testing

@Suite("UUIDv7")
struct UUIDv7Tests {
    @Test("version and variant bits are set and ids sort by time")
    func versionAndOrder() {
        let earlier = UUID.v7(now: Date(timeIntervalSince1970: 1_700_000_000))
        let later = UUID.v7(now: Date(timeIntervalSince1970: 1_700_000_001))
        #expect(earlier.bytes[6] >> 4 == 7)
        #expect(earlier.bytes[8] >> 6 == 0b10)
        #expect(earlier.uuidString < later.uuidString)
        #expect(UUID(bytes: earlier.bytes) == earlier)
        #expect(UUID(bytes: [UInt8](repeating: 0, count: 15)) == nil)
    }

    @Test("the first 48 bits are Unix milliseconds, the next 12 the millisecond's fraction: ids within one millisecond sort by time")
    func subMillisecondOrder() {
        let base = 1_700_000_000.1235  // seconds; the eight ids span 123.5–124.2 ms
        let ids = (0..<8).map { UUID.v7(now: Date(timeIntervalSince1970: base + Double($0) * 0.000_1)) }
        let millis = ids[0].bytes[0..<6].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        #expect(millis == 1_700_000_000_123)
        #expect(ids.map(\.uuidString) == ids.map(\.uuidString).sorted())
        #expect(Set(ids).count == 8)
        // 62 random bits: ids made at the same instant differ.
        let now = Date()
        #expect(Set((0..<1_000).map { _ in UUID.v7(now: now) }).count == 1_000)
    }
}

@Suite("Timestamps")
struct TimestampTests {
    @Test("timestamps print as RFC 3339 UTC with microseconds")
    func description() {
        #expect(Timestamp(microsecondsSinceEpoch: 1_700_000_000_000_042).description == "2023-11-14T22:13:20.000042Z")
        #expect(Timestamp(microsecondsSinceEpoch: -1).description == "1969-12-31T23:59:59.999999Z")
    }
}
