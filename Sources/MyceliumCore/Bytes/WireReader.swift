/// A bounds-checked big-endian reader over untrusted bytes.
///
/// Every read either returns a value or throws `WireError.truncated`; nothing here can trap or
/// allocate more than the caller asked for, which is what lets every decoder take hostile input.
public struct WireReader {
    public let bytes: [UInt8]
    public private(set) var offset: Int
    public let end: Int

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        self.offset = 0
        self.end = bytes.count
    }

    /// Reads only `bytes[start..<end]`.
    public init(_ bytes: [UInt8], start: Int, end: Int) {
        precondition(0 <= start && start <= end && end <= bytes.count)
        self.bytes = bytes
        self.offset = start
        self.end = end
    }

    public var remaining: Int { end - offset }

    public mutating func u8() throws(WireError) -> UInt8 {
        guard remaining >= 1 else { throw .truncated(needed: 1, available: remaining) }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func u16() throws(WireError) -> UInt16 {
        guard remaining >= 2 else { throw .truncated(needed: 2, available: remaining) }
        defer { offset += 2 }
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }

    public mutating func u32() throws(WireError) -> UInt32 {
        guard remaining >= 4 else { throw .truncated(needed: 4, available: remaining) }
        defer { offset += 4 }
        return UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }

    public mutating func u64() throws(WireError) -> UInt64 {
        guard remaining >= 8 else { throw .truncated(needed: 8, available: remaining) }
        var value: UInt64 = 0
        for i in 0..<8 { value = value << 8 | UInt64(bytes[offset + i]) }
        offset += 8
        return value
    }

    public mutating func take(_ count: Int) throws(WireError) -> ArraySlice<UInt8> {
        guard count >= 0, remaining >= count else { throw .truncated(needed: count, available: remaining) }
        defer { offset += count }
        return bytes[offset..<offset + count]
    }

    public mutating func skip(_ count: Int) throws(WireError) {
        guard count >= 0, remaining >= count else { throw .truncated(needed: count, available: remaining) }
        offset += count
    }

    public mutating func rest() -> ArraySlice<UInt8> {
        defer { offset = end }
        return bytes[offset..<end]
    }
}

/// Big-endian appenders used by every encoder: one bulk append each (a byte at a time was a
/// capacity and uniqueness check per byte, 2.4 % of a sending daemon's CPU in a frame header).
extension Array where Element == UInt8 {
    @inlinable public mutating func appendU16(_ value: UInt16) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }

    @inlinable public mutating func appendU32(_ value: UInt32) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }

    @inlinable public mutating func appendU64(_ value: UInt64) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }
}
