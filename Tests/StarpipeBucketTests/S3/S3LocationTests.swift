import StarpipeBucket
import StarpipeCore
import Testing

@Suite("S3 bucket URLs")
struct S3LocationTests {
    @Test("AWS defaults: virtual-hosted on s3.<region>.amazonaws.com over https, 16 MiB parts, Content-MD5 only")
    func awsDefaults() throws {
        let location = try S3Location(url: "s3://data-bucket/landing/?region=eu-west-1", environment: [:])
        #expect(location.bucket == "data-bucket")
        #expect(location.prefix == "landing/")
        #expect(location.region == "eu-west-1")
        #expect(location.scheme == "https")
        #expect(location.host == "s3.eu-west-1.amazonaws.com")
        #expect(location.pathStyle == false)
        #expect(location.partSize == 16 << 20)
        #expect(location.checksumSHA256 == false)
    }

    @Test("region falls back to AWS_REGION, then us-east-1; no prefix is an empty prefix")
    func regionFallback() throws {
        #expect(try S3Location(url: "s3://b-1", environment: ["AWS_REGION": "ap-south-1"]).region == "ap-south-1")
        let plain = try S3Location(url: "s3://b-1/", environment: [:])
        #expect(plain.region == "us-east-1")
        #expect(plain.prefix == "")
    }

    @Test("an endpoint means path-style unless told otherwise, and keeps its port and scheme")
    func endpoint() throws {
        let location = try S3Location(
            url: "s3://bucket/a/b?endpoint=http://127.0.0.1:9000&part_size=5242880&checksum=sha256", environment: [:])
        #expect(location.scheme == "http")
        #expect(location.host == "127.0.0.1")
        #expect(location.port == 9000)
        #expect(location.pathStyle)
        #expect(location.prefix == "a/b/")
        #expect(location.partSize == 5_242_880)
        #expect(location.checksumSHA256)
        let virtual = try S3Location(url: "s3://bucket?endpoint=https://storage.example.com&path_style=false", environment: [:])
        #expect(!virtual.pathStyle)
    }

    @Test("bad values are configuration errors", arguments: [
        "s3://bucket/p?path_style=yes", "s3://bucket/p?checksum=crc32", "s3://bucket/../x", "s3://bucket/p?endpoint=http://h/path",
    ])
    func refused(url: String) {
        #expect(throws: StarpipeError.self) { try S3Location(url: url, environment: [:]) }
    }
}
