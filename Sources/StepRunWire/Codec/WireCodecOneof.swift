import CStepRunProto

/// A message-typed oneof member of a protobuf-c message, reached by field number through the
/// message's descriptor.
///
/// `Request.call` and `TransactionOperation.operation` carry the same request messages under the same
/// numbers, as `Response.result` and `TransactionOperationResult.result` carry the same results; going
/// by number lets one encoder and one decoder per operation serve both messages instead of a switch per
/// message. protobuf-c stores a oneof as a `uint32_t` case (the member's field number) at the field's
/// `quantifier_offset` and a union of member pointers at its `offset`; the descriptor says both, and
/// a lookup by number is a search of a few ranges, with no allocation.
/// `OperationTableTests` checks that every number means the same message type in both carriers.
enum OneofMember {
    /// Sets member `number` of `message` to `body` (which must point to that member's message type).
    /// False, and `message` untouched, when `message` has no such member.
    static func set<Message>(
        _ message: UnsafeMutablePointer<Message>, number: UInt32, to body: UnsafeMutableRawPointer
    ) -> Bool {
        guard let field = messageField(of: message, number) else { return false }
        let raw = UnsafeMutableRawPointer(message)
        raw.storeBytes(of: number, toByteOffset: Int(field.pointee.quantifier_offset), as: UInt32.self)
        raw.storeBytes(of: body, toByteOffset: Int(field.pointee.offset), as: UnsafeMutableRawPointer?.self)
        return true
    }

    /// Member `number` of `message` (the number its oneof case holds), nil when absent.
    static func get<Message>(
        _ message: UnsafeMutablePointer<Message>, number: UInt32
    ) -> UnsafeMutableRawPointer? {
        guard let field = messageField(of: message, number) else { return nil }
        return UnsafeRawPointer(message).load(fromByteOffset: Int(field.pointee.offset), as: UnsafeMutableRawPointer?.self)
    }

    /// Field `number` of `message`'s type when it is a message-typed oneof member. Every generated
    /// message starts with its `ProtobufCMessage` header, whose first word points to the descriptor
    /// (set by the message's `…__init` and by unpacking).
    static func messageField<Message>(
        of message: UnsafeMutablePointer<Message>, _ number: UInt32
    ) -> UnsafePointer<ProtobufCFieldDescriptor>? {
        let header = UnsafePointer<ProtobufCMessage>(OpaquePointer(message))
        guard let field = protobuf_c_message_descriptor_get_field(header.pointee.descriptor, number),
            field.pointee.type == PROTOBUF_C_TYPE_MESSAGE,
            field.pointee.flags & PROTOBUF_C_FIELD_FLAG_ONEOF.rawValue != 0
        else { return nil }
        return field
    }
}

/// The four messages whose oneof carries operations or results, for checking that the numbers they
/// share mean the same (`OperationTableTests`).
enum OneofCarrier: CaseIterable {
    case request, transactionOperation, response, transactionOperationResult

    /// Member `number`'s field name and message type (`steprun.v1.BeginStepRequest`); nil when the
    /// carrier has no message-typed oneof member of that number.
    func member(_ number: UInt32) -> (name: String, type: String)? {
        switch self {
        case .request: describe(number, steprun__v1__request__init)
        case .transactionOperation: describe(number, steprun__v1__transaction_operation__init)
        case .response: describe(number, steprun__v1__response__init)
        case .transactionOperationResult: describe(number, steprun__v1__transaction_operation_result__init)
        }
    }

    private func describe<Message>(
        _ number: UInt32, _ initialize: (UnsafeMutablePointer<Message>) -> Void
    ) -> (name: String, type: String)? {
        let message = UnsafeMutablePointer<Message>.allocate(capacity: 1)
        defer { message.deallocate() }
        initialize(message)
        guard let field = OneofMember.messageField(of: message, number) else { return nil }
        let type = field.pointee.descriptor.assumingMemoryBound(to: ProtobufCMessageDescriptor.self)
        return (String(cString: field.pointee.name), String(cString: type.pointee.name))
    }
}
