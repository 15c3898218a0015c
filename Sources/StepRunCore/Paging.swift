import Foundation

/// How much of a list one call asks for (`completedSteps`, `completedOutputs`,
/// `completedStepRunsForCompensation`, `stepStatuses`, `listAttempts`).
///
/// A list larger than one response is read as pages: each page ends where the next one's
/// `after` token says to continue. The store bounds a page by `size` and by `maxBytes`, and a page
/// holds at least one element whenever the list has one after the cursor, so following the tokens
/// always gets to the end.
public struct PageRequest: Sendable, Hashable {
    /// Most elements wanted; nil = as many as `maxBytes` allows (never more than `maxSize`).
    public var size: Int?
    /// Where to continue: the `next` token of the previous page of this same list; nil = the start.
    public var after: PageToken?
    /// The bytes the page's elements may take in one response; nil = unbounded (an in-process
    /// store has no frames). The daemon sets it from its frame limit, never the client.
    public var maxBytes: Int?
    /// True when the caller follows `next` tokens. False for a caller that expects the whole list in
    /// one answer (a protocol version 1 client that sent no paging fields): it gets the whole list,
    /// or an error telling it to page when the list does not fit one response — never a silently
    /// shortened list.
    public var paged: Bool

    public init(size: Int? = nil, after: PageToken? = nil, paged: Bool = true, maxBytes: Int? = nil) {
        self.size = size
        self.after = after
        self.paged = paged
        self.maxBytes = maxBytes
    }

    /// The whole list in one answer.
    public static let whole = PageRequest(paged: false)

    /// The most elements one page holds, whatever `size` asks for: it bounds the work a page costs
    /// the database (each candidate row's size is measured before the page is cut).
    public static let maxSize = 1000

    /// The number of rows a page's statement considers: one more than it may return, so the extra
    /// row tells that the list goes on. Nil (no limit) for a whole-list read.
    public var candidateLimit: Int? {
        guard paged else { return nil }
        return max(1, min(size ?? Self.maxSize, Self.maxSize)) + 1
    }
}

/// The lists that can be paged; the first byte after the version of every token, so a token of one
/// list is refused by another.
public enum PagedList: UInt8, Sendable, Hashable {
    case completedSteps = 1
    case completedOutputs = 2
    case compensation = 3
    case stepStatuses = 4
    case attempts = 5
    /// Reserved for `expired_steps` (a later protocol version): cursor = lease expiry, id.
    case expiredSteps = 6

    /// The request field paging this list is named after, for errors.
    public var operationName: String {
        switch self {
        case .completedSteps: "completed_steps"
        case .completedOutputs: "completed_outputs"
        case .compensation: "completed_step_runs_for_compensation"
        case .stepStatuses: "step_statuses"
        case .attempts: "list_attempts"
        case .expiredSteps: "expired_steps"
        }
    }
}

/// The position after the last element of a page, in the list's own order (docs/STORE.md).
public enum PageCursor: Sendable, Hashable {
    /// Completion order (ascending) or compensation order (descending): the element's sort key in
    /// µs since the epoch, then its id. For compensation `time` is the latest completed attempt's
    /// completion time if it has one, else `completed_at`.
    case timeKey(time: Int64, insertedAt: Int64, id: UUID)
    /// step_statuses: the step name; the next page starts after it in byte order.
    case step(String)
    /// list_attempts: the attempt number.
    case attemptNumber(Int64)
}

/// A page token: which list, of which run (or step run), and where to continue. Opaque to
/// clients; `bytes` is what goes on the wire.
///
/// Layout: version byte 1, the list's byte, the 16 bytes of the scope UUID, then the cursor —
/// `timeKey`: two big-endian int64 and 16 id bytes; `step`: the name's UTF-8 bytes;
/// `attemptNumber`: one big-endian int64. Tokens carry no secret: a client that forges one only
/// moves its own position in a list it may read anyway.
public struct PageToken: Sendable, Hashable {
    public var list: PagedList
    /// The run (step run for `attempts`) the token belongs to.
    public var scope: UUID
    public var cursor: PageCursor

    private static let version: UInt8 = 1
    private static let maxExactMicros: Int64 = 1 << 53

    public init(list: PagedList, scope: UUID, cursor: PageCursor) {
        self.list = list
        self.scope = scope
        self.cursor = cursor
    }

    public var bytes: [UInt8] {
        var out: [UInt8] = [Self.version, list.rawValue]
        withUnsafeBytes(of: scope.uuid) { out.append(contentsOf: $0) }
        switch cursor {
        case .timeKey(let time, let insertedAt, let id):
            Self.append(time, to: &out)
            Self.append(insertedAt, to: &out)
            withUnsafeBytes(of: id.uuid) { out.append(contentsOf: $0) }
        case .step(let name):
            out.append(contentsOf: name.utf8)
        case .attemptNumber(let number):
            Self.append(number, to: &out)
        }
        return out
    }

    /// Reads a token of any list; anything that is not one is `INVALID_ARGUMENT` naming `field`.
    public init(decoding bytes: [UInt8], field: String = "page_token") throws(StepRunError) {
        let refuse = { (why: String) -> StepRunError in Self.refusal(field, why) }
        guard bytes.count >= 18, bytes[0] == Self.version, let list = PagedList(rawValue: bytes[1]) else {
            throw refuse("is not a page token of this server")
        }
        let rest = bytes[18...]
        switch list {
        case .completedSteps, .completedOutputs, .compensation, .expiredSteps:
            guard rest.count == 32 else { throw refuse("is not a page token of this server (bad length)") }
            let (time, insertedAt) = (Self.int64(bytes, at: 18), Self.int64(bytes, at: 26))
            // The store turns these back into timestamps through a double: only values it could
            // have written (µs within ±2^53 of the epoch, about ±285 years) come back exact.
            // `magnitude`, not `abs`: the bytes are the client's, and abs(Int64.min) traps.
            guard time.magnitude <= Self.maxExactMicros.magnitude, insertedAt.magnitude <= Self.maxExactMicros.magnitude else {
                throw refuse("is not a page token of this server (time out of range)")
            }
            cursor = .timeKey(time: time, insertedAt: insertedAt, id: UUID(uuid: Self.uuid(bytes, at: 34)))
        case .stepStatuses:
            guard (1...StoreLimits.maxStepNameBytes).contains(rest.count), !rest.contains(0),
                let name = String(validating: rest, as: UTF8.self)
            else { throw refuse("is not a page token of this server (bad step)") }
            cursor = .step(name)
        case .attempts:
            guard rest.count == 8 else { throw refuse("is not a page token of this server (bad length)") }
            cursor = .attemptNumber(Self.int64(bytes, at: 18))
        }
        self.list = list
        self.scope = UUID(uuid: Self.uuid(bytes, at: 2))
    }

    /// Refuses a token that is not of `list` of `scope` (a token of another list or another run).
    public func check(list expected: PagedList, scope expectedScope: UUID, field: String = "page_token") throws(StepRunError) {
        guard list == expected else {
            throw Self.refusal(field, "is a page token of \(list.operationName), not of \(expected.operationName)")
        }
        guard scope == expectedScope else {
            throw Self.refusal(field, "belongs to another run (\(scope.uuidString.lowercased())), not to \(expectedScope.uuidString.lowercased())")
        }
    }

    private static func refusal(_ field: String, _ why: String) -> StepRunError {
        .invalidArgument(field: field, message: "\(field) \(why); pass the next_page_token of the previous page of the same list unchanged, or none for the first page")
    }

    private static func append(_ value: Int64, to out: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { out.append(contentsOf: $0) }
    }

    private static func int64(_ bytes: [UInt8], at offset: Int) -> Int64 {
        bytes[offset..<offset + 8].reduce(0) { ($0 << 8) | Int64($1) }
    }

    private static func uuid(_ bytes: [UInt8], at o: Int) -> uuid_t {
        (bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3], bytes[o + 4], bytes[o + 5], bytes[o + 6], bytes[o + 7],
         bytes[o + 8], bytes[o + 9], bytes[o + 10], bytes[o + 11], bytes[o + 12], bytes[o + 13], bytes[o + 14], bytes[o + 15])
    }
}

extension StoreRequest {
    /// The page a list request asks for; nil for every other request.
    public var page: PageRequest? {
        switch self {
        case .completedSteps(_, let page), .completedOutputs(_, let page), .completedStepRunsForCompensation(_, let page),
            .stepStatuses(_, let page), .listAttempts(_, let page):
            page
        default:
            nil
        }
    }

    /// The list a list request reads; nil for every other request.
    public var pagedList: PagedList? {
        switch self {
        case .completedSteps: .completedSteps
        case .completedOutputs: .completedOutputs
        case .completedStepRunsForCompensation: .compensation
        case .stepStatuses: .stepStatuses
        case .listAttempts: .attempts
        default: nil
        }
    }

    /// Refuses a page token of another list or another run.
    static func validatePageToken(_ token: PageToken?, of request: StoreRequest, scope: UUID) throws(StepRunError) {
        guard let token, let list = request.pagedList else { return }
        try token.check(list: list, scope: scope)
    }

    /// The request with its page bounded as the daemon serves it: at most `maxBytes` of elements
    /// (one response's worth), paged when the caller said it pages (`pagedConnection`: its Hello
    /// named protocol version 2, or it sent a paging field).
    public func served(maxBytes: Int, pagedConnection: Bool) -> StoreRequest {
        func bound(_ page: PageRequest) -> PageRequest {
            var page = page
            page.maxBytes = maxBytes
            page.paged = page.paged || pagedConnection
            return page
        }
        switch self {
        case .completedSteps(let id, let page): return .completedSteps(runID: id, page: bound(page))
        case .completedOutputs(let id, let page): return .completedOutputs(runID: id, page: bound(page))
        case .completedStepRunsForCompensation(let id, let page): return .completedStepRunsForCompensation(runID: id, page: bound(page))
        case .stepStatuses(let id, let page): return .stepStatuses(runID: id, page: bound(page))
        case .listAttempts(let id, let page): return .listAttempts(stepRunID: id, page: bound(page))
        default: return self
        }
    }
}
