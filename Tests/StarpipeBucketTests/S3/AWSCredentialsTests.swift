import Foundation
import StarpipeBucket
import StarpipeCore
import Testing

@Suite("AWS credentials")
struct AWSCredentialsTests {
    @Test("the environment's key pair wins, with its session token")
    func environment() throws {
        let credentials = try AWSCredentials.fromEnvironment([
            "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s3cr3t-env", "AWS_SESSION_TOKEN": "token-env",
        ])
        #expect(credentials.accessKeyID == "AKID")
        #expect(!"\(credentials)".contains("s3cr3t") && !"\(credentials)".contains("token-env"))
    }

    @Test("otherwise the AWS_PROFILE section of the shared credentials file")
    func profile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("creds-\(UInt32.random(in: 0...UInt32.max))").path
        try """
            [default]
            aws_access_key_id = DEFAULTKEY
            aws_secret_access_key = defaultsecret
            # a comment
            [client]
            aws_access_key_id=CLIENTKEY
            aws_secret_access_key = clientsecret
            """.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let chosen = try AWSCredentials.fromEnvironment(["AWS_SHARED_CREDENTIALS_FILE": path, "AWS_PROFILE": "client"])
        #expect(chosen.accessKeyID == "CLIENTKEY")
        let fallback = try AWSCredentials.fromEnvironment(["AWS_SHARED_CREDENTIALS_FILE": path])
        #expect(fallback.accessKeyID == "DEFAULTKEY")
        #expect(throws: StarpipeError.self) {
            try AWSCredentials.fromEnvironment(["AWS_SHARED_CREDENTIALS_FILE": path, "AWS_PROFILE": "missing"])
        }
    }
}
