import Foundation
import NIOCore
import StepRunCore
import StepRunWire

/// Values shared by the tests: fixed ids and timestamps so encodings are reproducible.
enum Fixture {
    static let runID = UUID(uuidString: "0190A1B2-C3D4-7E5F-8A6B-7C8D9E0F1A2B")!
    static let stepRunID = UUID(uuidString: "0190A1B2-C3D5-7000-8000-000000000001")!
    static let attemptID = UUID(uuidString: "0190A1B2-C3D6-7000-8000-000000000002")!
    static let inserted = Timestamp(microsecondsSinceEpoch: 1_719_000_000_000_000)
    static let updated = Timestamp(microsecondsSinceEpoch: 1_719_000_000_250_000)

    static func json(_ text: String) -> JSONPayload {
        try! JSONPayload(validating: text)
    }

    /// A step run with every nullable field set.
    static let fullStepRun = StepRun(
        id: stepRunID, runID: runID, step: "charge-card", status: .completed,
        input: json(#"{"amount":1200,"currency":"EUR"}"#),
        output: json(#"{"charge_id":"ch_1"}"#), lastError: json(#"{"code":"card_declined"}"#),
        recovery: json(#"{"undo":"refund"}"#), resume: json(#"{"target":"__complete__"}"#),
        manual: json(#"{"actor":"ops@example.com"}"#),
        insertedAt: inserted, updatedAt: updated, completedAt: updated)

    /// A step run with every nullable field null.
    static let bareStepRun = StepRun(
        id: stepRunID, runID: runID, step: "ship", status: .running, input: .empty,
        insertedAt: inserted, updatedAt: inserted)

    /// Nullable fields present but `{}`: must stay distinct from null.
    static let emptyObjectsStepRun = StepRun(
        id: stepRunID, runID: runID, step: "ünïcödé ✓", status: .failed, input: .empty,
        output: .empty, lastError: .empty, recovery: .empty, resume: .empty, manual: .empty,
        insertedAt: Timestamp(microsecondsSinceEpoch: -1), updatedAt: Timestamp(microsecondsSinceEpoch: 0),
        completedAt: Timestamp(microsecondsSinceEpoch: 0))

    static let runningAttempt = StepAttempt(
        id: attemptID, stepRunID: stepRunID, attemptNumber: 1, status: .running, insertedAt: inserted, updatedAt: inserted)

    static let failedAttempt = StepAttempt(
        id: attemptID, stepRunID: stepRunID, attemptNumber: 3, status: .failed,
        error: json(#"{"message":"timeout"}"#), insertedAt: inserted, updatedAt: updated)
}

/// Round trips through the public codec, including the length prefix.
enum Wire {
    static func roundTrip(_ frame: RequestFrame) throws -> RequestFrame {
        var buffer = ByteBuffer()
        WireCodec.encodeRequest(frame, into: &buffer)
        return try WireCodec.decodeRequest(payload(of: buffer))
    }

    static func roundTrip(_ frame: ResponseFrame) throws -> ResponseFrame {
        var buffer = ByteBuffer()
        WireCodec.encodeResponse(frame, into: &buffer)
        return try WireCodec.decodeResponse(payload(of: buffer))
    }

    /// The body of the single frame in `buffer`, checking its length prefix.
    static func payload(of buffer: ByteBuffer) throws -> ByteBuffer {
        var copy = buffer
        guard let length = copy.readInteger(endianness: .big, as: UInt32.self), Int(length) == copy.readableBytes else {
            throw PrefixMismatch()
        }
        return copy
    }

    struct PrefixMismatch: Error {}

    /// The decoding error for a request payload given as raw bytes.
    static func requestError(_ bytes: [UInt8]) -> WireDecodingError? {
        do {
            _ = try WireCodec.decodeRequest(ByteBuffer(bytes: bytes))
            return nil
        } catch {
            return error
        }
    }

    static func hex(_ buffer: ByteBuffer) -> String {
        buffer.readableBytesView.map { String(format: "%02x", $0) }.joined()
    }
}

/// Writes protobuf by hand, so tests can build messages the codec would never produce.
struct ProtoWriter {
    private(set) var bytes: [UInt8] = []

    mutating func varint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    mutating func tag(_ field: UInt64, _ wireType: UInt64) {
        varint(field << 3 | wireType)
    }

    /// A varint field (wire type 0).
    mutating func int(_ field: UInt64, _ value: UInt64) {
        tag(field, 0)
        varint(value)
    }

    /// A length-delimited field (wire type 2).
    mutating func bytes(_ field: UInt64, _ value: [UInt8]) {
        tag(field, 2)
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    mutating func text(_ field: UInt64, _ value: String) {
        bytes(field, Array(value.utf8))
    }

    mutating func message(_ field: UInt64, _ build: (inout ProtoWriter) -> Void) {
        var nested = ProtoWriter()
        build(&nested)
        bytes(field, nested.bytes)
    }

    /// A Request with `id` and one call built by `build` in field `call`.
    static func request(id: UInt64, call: UInt64, _ build: (inout ProtoWriter) -> Void) -> [UInt8] {
        var writer = ProtoWriter()
        writer.int(1, id)
        writer.message(call, build)
        return writer.bytes
    }
}

/// Field numbers of steprun.v1.Request.call used by the malformed-input tests.
enum CallField {
    static let beginStep: UInt64 = 20
    static let deletePendingSteps: UInt64 = 23
    static let completeStep: UInt64 = 30
    static let persistPauseResume: UInt64 = 33
    static let recordFailureRecovery: UInt64 = 35
    static let getStepRun: UInt64 = 40
    static let recordAttempt: UInt64 = 53
    static let transaction: UInt64 = 61
}
