import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// The few things starpipe reads from S3's XML answers: the root element and the text of leaf elements, in order.
struct S3XML {
    /// The document element's name (`Error`, `ListBucketResult`, …).
    private(set) var root = ""
    /// Every leaf element as (name, text), in document order.
    private(set) var leaves: [(name: String, text: String)] = []

    /// Parses `bytes`; nil when it is not well-formed XML. Leading whitespace is skipped: S3 may send keep-alive
    /// spaces before the body of a CompleteMultipartUpload.
    init?(_ bytes: [UInt8]) {
        guard let start = bytes.firstIndex(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }) else { return nil }
        let parser = XMLParser(data: Data(bytes[start...]))
        let collector = Collector()
        parser.delegate = collector
        guard parser.parse(), let root = collector.root else { return nil }
        self.root = root
        leaves = collector.leaves
    }

    /// The text of the first leaf named `name`.
    func first(_ name: String) -> String? {
        leaves.first { $0.name == name }?.text
    }

    /// The text of every leaf named `name`, in order.
    func all(_ name: String) -> [String] {
        leaves.filter { $0.name == name }.map(\.text)
    }

    private final class Collector: NSObject, XMLParserDelegate {
        var root: String?
        var leaves: [(name: String, text: String)] = []
        private var text = ""
        private var hasChild = [false]

        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                    qualifiedName: String?, attributes: [String: String] = [:]) {
            if root == nil { root = elementName }
            hasChild[hasChild.count - 1] = true
            hasChild.append(false)
            text = ""
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            text += string
        }

        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
            if hasChild.removeLast() == false { leaves.append((elementName, text)) }
            text = ""
        }
    }
}
