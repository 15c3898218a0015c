import NIOCore
import StepRunCore
import StepRunWire
import Testing

/// The bytes of every fixture frame, pinned: protocol version 2 is frozen, so a change to the codec
/// (such as issue 21's one table of operations) must leave every encoding exactly as it was.
struct WireBytesTests {
    /// FNV-1a 64 of the encodings of the first fixtures, in order, recorded from the codec before
    /// issue 21. New fixtures go at the end of their lists and leave the digest as it is.
    static let pinnedDigest: UInt64 = 0x5a5a_92f8_c7e6_c08d
    static let pinnedCounts = (requests: 34, results: 32, errors: 46)

    static func digest() -> UInt64 {
        var buffer = ByteBuffer()
        for request in RequestRoundTripTests.storeRequests.prefix(pinnedCounts.requests) {
            WireCodec.encodeRequest(RequestFrame(id: 42, timeoutMs: 1500, call: .store(request)), into: &buffer)
        }
        for result in ResultRoundTripTests.storeResults.prefix(pinnedCounts.results) {
            WireCodec.encodeResponse(ResponseFrame(id: 7, outcome: .success(.store(result))), into: &buffer)
        }
        for error in ErrorRoundTripTests.allErrors.prefix(pinnedCounts.errors) {
            WireCodec.encodeResponse(ResponseFrame(id: 9, outcome: .failure(error)), into: &buffer)
        }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in buffer.readableBytesView {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        return hash
    }

    @Test func everyFixtureEncodesToThePinnedBytes() {
        #expect(RequestRoundTripTests.storeRequests.count >= Self.pinnedCounts.requests)
        #expect(ResultRoundTripTests.storeResults.count >= Self.pinnedCounts.results)
        #expect(ErrorRoundTripTests.allErrors.count >= Self.pinnedCounts.errors)
        let digest = Self.digest()
        #expect(digest == Self.pinnedDigest, "digest \(String(digest, radix: 16)) over \(RequestRoundTripTests.storeRequests.count) requests, \(ResultRoundTripTests.storeResults.count) results, \(ErrorRoundTripTests.allErrors.count) errors")
    }
}
