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
}

@Suite("Timestamps")
struct TimestampTests {
    @Test("timestamps print as RFC 3339 UTC with microseconds")
    func description() {
        #expect(Timestamp(microsecondsSinceEpoch: 1_700_000_000_000_042).description == "2023-11-14T22:13:20.000042Z")
        #expect(Timestamp(microsecondsSinceEpoch: -1).description == "1969-12-31T23:59:59.999999Z")
    }
}
