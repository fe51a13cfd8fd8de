// bytes -> JSONValue.parse. Oracle: no crash; only VisionError.format; a value that parses serializes to text
// that parses back to an equal value, and serializing is idempotent.
import VisionCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafeRawPointer, _ count: Int) -> CInt {
    let buf = UnsafeRawBufferPointer(start: data, count: count)
    let value: JSONValue
    do {
        value = try JSONValue.parse(buf)
    } catch VisionError.format {
        return 0
    } catch {
        fuzzFail("parse threw something other than a format error: \(error)")
    }
    let text = value.serialized
    let again: JSONValue
    do {
        again = try JSONValue.parse(text)
    } catch {
        fuzzFail("serialized text does not parse: \(error)\n\(text.prefix(300))")
    }
    guard again == value else { fuzzFail("round trip changed the value: \(text.prefix(300))") }
    guard again.serialized == text else { fuzzFail("serialization is not idempotent: \(text.prefix(300))") }
    return 0
}
