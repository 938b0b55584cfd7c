public import MyceliumDatapath
import MyceliumCore

/// The topic file (`--topic-config`, spec §7.4), in Rust Mycelium's format:
///
/// ```toml
/// default = "Reject"            # or "Accept" (the default) for topics not listed
/// "chat.room" = { subnets = ["400::/7"], forward_socket = "/run/chat.sock" }
/// [alerts]                      # the same as a section
/// subnets = ["5f4:2d1::/64", "4e7:3a0:4f1:9b2::1"]
/// legacy = ["400::/7"]          # the old format: the allowed subnets alone
/// ```
///
/// A topic name with dots must be quoted. Sources are subnets or bare addresses (/128, /32).
/// Unlike Rust, which ignores a file it cannot read, a bad file stops the start with one line.
public enum TopicConfigFile {
    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    public static func parse(_ text: String) throws(Invalid) -> TopicConfig {
        let values: [String: ConfigFile.Value]
        do { values = try ConfigFile.parse(text, allowTables: true) } catch { throw Invalid(description: "\(error)") }
        var config = TopicConfig()
        for (name, value) in values.sorted(by: { $0.key < $1.key }) {
            if name == "default" {
                switch value {
                case .string("Accept"): config.defaultAccept = true
                case .string("Reject"): config.defaultAccept = false
                default: throw Invalid(description: "default must be \"Accept\" or \"Reject\"")
                }
                continue
            }
            let topic = Array(name.utf8)
            guard topic.count <= MessageProtocol.maxTopicLength else {
                throw Invalid(description: "topic '\(name)' is longer than 255 bytes")
            }
            var sources: [ConfigFile.Value] = []
            var socket: String?
            switch value {
            case let .array(items):
                sources = items
            case let .table(fields):
                for key in fields.keys.sorted() where key != "subnets" && key != "forward_socket" {
                    throw Invalid(description: "topic '\(name)': unknown key '\(key)' (expected subnets, forward_socket)")
                }
                switch fields["subnets"] {
                case nil: break
                case let .array(items)?: sources = items
                default: throw Invalid(description: "topic '\(name)': subnets must be an array of strings")
                }
                switch fields["forward_socket"] {
                case nil: break
                case let .string(path)? where path.hasPrefix("/"): socket = path
                default: throw Invalid(description: "topic '\(name)': forward_socket must be an absolute path")
                }
            default:
                throw Invalid(description: "topic '\(name)' must be a table { subnets = [...], forward_socket = \"...\" } or an array of subnets")
            }
            do {
                try config.add(topic)
                for item in sources {
                    guard case let .string(text) = item, let subnet = TopicConfig.parseSource(text) else {
                        throw Invalid(description: "topic '\(name)': \(item) is not a subnet or an address")
                    }
                    try config.addSource(subnet, to: topic)
                }
            } catch let error as Invalid {
                throw error
            } catch {
                throw Invalid(description: "too many topics or sources (at most \(TopicConfig.maxTopics) topics of \(TopicConfig.maxSources) sources)")
            }
            config.setForwardSocket(socket, of: topic)
        }
        return config
    }
}
