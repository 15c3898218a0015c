import CStepRunProto
import Foundation
import StepRunCore

// The paging fields of the five list requests and results (docs/PROTOCOL.md §6, "Lists and pages"),
// read and written in one place for all of them.

/// A list request message: its paging fields.
protocol PagedRequestMessage {
    var page_size: UInt32 { get set }
    var page_token: ProtobufCBinaryData { get set }
}

/// A list result message: its next page's token.
protocol PagedResultMessage {
    var next_page_token: ProtobufCBinaryData { get set }
}

extension Steprun__V1__CompletedStepsRequest: PagedRequestMessage {}
extension Steprun__V1__CompletedOutputsRequest: PagedRequestMessage {}
extension Steprun__V1__CompletedStepRunsForCompensationRequest: PagedRequestMessage {}
extension Steprun__V1__StepStatusesRequest: PagedRequestMessage {}
extension Steprun__V1__ListAttemptsRequest: PagedRequestMessage {}
extension Steprun__V1__CompletedStepsResult: PagedResultMessage {}
extension Steprun__V1__CompletedOutputsResult: PagedResultMessage {}
extension Steprun__V1__CompletedStepRunsForCompensationResult: PagedResultMessage {}
extension Steprun__V1__StepStatusesResult: PagedResultMessage {}
extension Steprun__V1__ListAttemptsResult: PagedResultMessage {}

extension FieldReader {
    /// The page a list request asks for. Setting either paging field says the caller pages
    /// (`PageRequest.paged`); a token must be one of `list` of `scope`.
    func page(_ message: some PagedRequestMessage, list: PagedList, scope: UUID) throws(StepRunError) -> PageRequest {
        let tokenBytes = bytes(message.page_token)
        var after: PageToken?
        if !tokenBytes.isEmpty {
            let token = try PageToken(decoding: tokenBytes, field: prefix + "page_token")
            try token.check(list: list, scope: scope, field: prefix + "page_token")
            after = token
        }
        let size = message.page_size == 0 ? nil : Int(message.page_size)
        return PageRequest(size: size, after: after, paged: size != nil || after != nil)
    }

    /// A result's next page token; an empty field is the last page.
    func nextToken(_ message: some PagedResultMessage, _ field: String) throws(StepRunError) -> PageToken? {
        let tokenBytes = bytes(message.next_page_token)
        return tokenBytes.isEmpty ? nil : try PageToken(decoding: tokenBytes, field: prefix + field)
    }

    private func bytes(_ data: ProtobufCBinaryData) -> [UInt8] {
        guard data.len > 0, let pointer = data.data else { return [] }
        return Array(UnsafeBufferPointer(start: pointer, count: data.len))
    }
}

extension EncodeArena {
    /// A list request: its scope id and paging fields.
    func listRequest<Message: PagedRequestMessage>(
        _ scope: UUID, _ page: PageRequest, _ initialize: (UnsafeMutablePointer<Message>) -> Void,
        _ field: WritableKeyPath<Message, ProtobufCBinaryData>
    ) -> UnsafeMutablePointer<Message> {
        let message = runOnly(scope, initialize, field)
        message.pointee.page_size = UInt32(clamping: page.size ?? 0)
        if let token = page.after { message.pointee.page_token = binary(token.bytes) }
        return message
    }

    /// Sets a list result's next page token (left empty on the last page).
    func setNext(_ token: PageToken?, on message: UnsafeMutablePointer<some PagedResultMessage>) {
        if let token { message.pointee.next_page_token = binary(token.bytes) }
    }
}
