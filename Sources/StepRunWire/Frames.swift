import StepRunCore

/// What a client asks for in one request.
public enum Call: Sendable, Hashable {
    /// The connection handshake; must be the first frame.
    case hello(Hello)
    /// Is the daemon serving and its database reachable?
    case health
    /// One store operation.
    case store(StoreRequest)
}

/// One client → server frame.
public struct RequestFrame: Sendable, Hashable {
    /// Chosen by the client, unique among its in-flight requests; the response carries it back.
    public var id: UInt64
    /// How long the server may work on the call, in milliseconds; 0 means the server's default.
    public var timeoutMs: UInt32
    /// The call.
    public var call: Call

    public init(id: UInt64, timeoutMs: UInt32 = 0, call: Call) {
        self.id = id
        self.timeoutMs = timeoutMs
        self.call = call
    }
}

/// What a successful call returns.
public enum Reply: Sendable, Hashable {
    case hello(HelloReply)
    case health(HealthReply)
    case store(StoreResult)
}

/// One server → client frame: the outcome of the request with the same id.
public struct ResponseFrame: Sendable {
    /// The request's id; 0 when the server could not read the id of a malformed request.
    public var id: UInt64
    /// The reply, or the error the call failed with.
    public var outcome: Result<Reply, StepRunError>

    public init(id: UInt64, outcome: Result<Reply, StepRunError>) {
        self.id = id
        self.outcome = outcome
    }
}

// Equality compares ids and outcomes; tests and the client match frames with it.
extension ResponseFrame: Hashable {}

/// A frame payload that could not be decoded.
public struct WireDecodingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The frame's id when it could still be read from the bytes; answer with it.
    public var requestID: UInt64?
    /// `.invalidArgument(field:message:)` for bad fields or bad protobuf, `.unimplemented` for an
    /// unknown call or result, `.transactionFailed(index:cause:)` for a bad transaction operation.
    public var error: StepRunError

    public init(requestID: UInt64?, error: StepRunError) {
        self.requestID = requestID
        self.error = error
    }

    public var description: String {
        "frame \(requestID.map(String.init) ?? "with unreadable id"): \(error)"
    }
}
