public import MyceliumCore
public import MyceliumDatapath
import NIOCore

/// The message bus for the API (spec §9, §10): each call hops onto the datapath's loop.
extension Node {
    public enum MessageCallError: Error, CustomStringConvertible {
        case notRunning
        case refused(MessageStack.PushError)
        case tooManyWaiters

        public var description: String {
            switch self {
            case .notRunning: "the node is not running"
            case let .refused(why): "\(why)"
            case .tooManyWaiters: "too many calls wait for messages already; try again later"
            }
        }
    }

    public enum PushOutcome: Sendable {
        /// Sent (not waiting for a reply).
        case sent(id: UInt64)
        case replied(ReceivedMessage)
        /// No reply within the timeout.
        case timedOut(id: UInt64)
    }

    private func messageService() throws(MessageCallError) -> (RouterService, MessageService) {
        guard let service, let datapath else { throw .notRunning }
        return (service, datapath.messages)
    }

    /// Sends a message; with `replyTimeoutMs`, waits that long for its reply.
    public func pushMessage(_ data: [UInt8], topic: [UInt8], to destination: IPv6Address,
                            replyTimeoutMs: Int64?) async throws(MessageCallError) -> PushOutcome {
        let (service, messages) = try messageService()
        let started: Result<(UInt64, EventLoopFuture<ReceivedMessage?>?), MessageStack.PushError>
        do {
            started = try await service.loop.submit { () -> Result<(UInt64, EventLoopFuture<ReceivedMessage?>?), MessageStack.PushError> in
                do throws(MessageStack.PushError) {
                    let r = try messages.push(data, topic: topic, to: destination, replyTimeoutMs: replyTimeoutMs)
                    return .success((r.id, r.reply))
                } catch { return .failure(error) }
            }.get()
        } catch { throw .notRunning }
        switch started {
        case let .failure(why): throw .refused(why)
        case let .success((id, reply)):
            guard let reply else { return .sent(id: id) }
            guard let message = try? await reply.get() else { return .timedOut(id: id) }
            return .replied(message)
        }
    }

    /// Sends `data` as the reply to message `id`.
    public func replyMessage(_ id: UInt64, _ data: [UInt8], to destination: IPv6Address) async throws(MessageCallError) {
        let (service, messages) = try messageService()
        let result: Result<Void, MessageStack.PushError>
        do {
            result = try await service.loop.submit { () -> Result<Void, MessageStack.PushError> in
                do throws(MessageStack.PushError) {
                    try messages.reply(to: id, data, destination: destination)
                    return .success(())
                } catch { return .failure(error) }
            }.get()
        } catch { throw .notRunning }
        if case let .failure(why) = result { throw .refused(why) }
    }

    /// The oldest message (on `topic`), waiting up to `timeoutMs`; nil if none came.
    public func popMessage(topic: [UInt8]?, peek: Bool, timeoutMs: Int64) async throws(MessageCallError) -> ReceivedMessage? {
        let (service, messages) = try messageService()
        let future: EventLoopFuture<ReceivedMessage?>?
        do {
            future = try await service.loop.submit { try? messages.pop(topic: topic, peek: peek, timeoutMs: timeoutMs) }.get()
        } catch { throw .notRunning }
        guard let future else { throw .tooManyWaiters }
        return (try? await future.get()) ?? nil
    }

    /// A sent message's status, with its times in Unix seconds.
    public func messageStatus(_ id: UInt64) async -> (status: MessageStatus, created: Int64, deadline: Int64)? {
        guard let (service, messages) = try? messageService() else { return nil }
        return (try? await service.loop.submit { () -> (MessageStatus, Int64, Int64)? in
            guard let s = messages.status(of: id) else { return nil }
            return (s, messages.unixSeconds(s.created), messages.unixSeconds(s.deadline))
        }.get()) ?? nil
    }

    /// Reads or changes the topic configuration on the loop.
    public func withTopics<T: Sendable>(_ body: @escaping @Sendable (inout TopicConfig) -> T) async -> T? {
        guard let (service, messages) = try? messageService() else { return nil }
        return try? await service.loop.submit {
            var topics = messages.topics
            let result = body(&topics)
            messages.topics = topics
            return result
        }.get()
    }

    public func messageStats() async -> (stats: MessageStats, inbox: Int, inboxBytes: Int)? {
        guard let (service, messages) = try? messageService() else { return nil }
        return try? await service.loop.submit { (messages.stats, messages.inbox.count, messages.inbox.bytes) }.get()
    }
}
