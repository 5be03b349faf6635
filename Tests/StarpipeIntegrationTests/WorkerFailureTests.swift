import Foundation
import Logging
import StarpipeBucket
import StarpipeRedis
import StarpipeWorker
import Testing

/// The worker against real failures: SIGKILL, SIGTERM and Redis restarted empty mid-job.
@Suite("Worker under failure", .serialized)
struct WorkerFailureTests {
    private func finish(_ large: LargeFile) throws {
        var logger = Logger(label: "starpipe.test")
        logger.logLevel = .error
        try Worker(options: WorkerOptions(databaseURL: large.pipelineURL, leaseSeconds: 3, untilIdle: true),
                   bucket: LocalBucket(root: large.bucketDirectory), logger: logger).run()
    }

    /// Waits until the job's lease has run out in the database's own clock (a heartbeat sent just
    /// before a kill or pause may still land, so a fixed sleep is not enough on a loaded machine).
    private func waitForLeaseExpiry(_ large: LargeFile) throws {
        #expect(try large.wait(timeout: 30) {
            try large.connection().query("SELECT lease_until < pg_catalog.now() FROM starpipe.job").scalar == "t"
        })
    }

    @Test("SIGKILL in the middle of a COPY, then a restart: SUCCESS with exactly the manifest's rows")
    func killMidJob() throws {
        let large = try LargeFile()
        let worker = try WorkerProcess(database: large.pipelineURL, bucket: large.bucketDirectory, arguments: ["--lease", "3"])
        #expect(try large.wait(timeout: 30) { try large.job()?.status == "PROCESSING" })
        Thread.sleep(forTimeInterval: 0.2)
        worker.signal(SIGKILL)
        #expect(worker.waitForExit(timeout: 10) != nil)
        let killed = try #require(try large.job())
        #expect(killed.status == "PROCESSING" && killed.stage == "registered", "the kill came too late: \(killed)")
        #expect(try large.rawRows() == 0, "a killed COPY left rows behind")
        // The lease runs out, a new worker reclaims the job and loads it once.
        try waitForLeaseExpiry(large)
        try finish(large)
        let done = try #require(try large.job())
        #expect(done.status == "SUCCESS")
        #expect(done.rowsRaw == large.rows)
        #expect(try large.rawRows() == large.rows)
    }

    @Test("SIGTERM stops claiming and lets the running job finish")
    func gracefulStop() throws {
        let large = try LargeFile(rows: 200_000)
        // A deadline far beyond the load's duration, even on a slow machine: the job must finish, not be released.
        let worker = try WorkerProcess(database: large.pipelineURL, bucket: large.bucketDirectory,
                                       arguments: ["--lease", "30", "--shutdown-deadline", "600"])
        #expect(try large.wait(timeout: 30) { try large.job()?.status == "PROCESSING" })
        worker.signal(SIGTERM)
        let status = worker.waitForExit(timeout: 60)
        #expect(status == 0, "\(worker.log())")
        let done = try #require(try large.job())
        #expect(done.status == "SUCCESS")
        #expect(try large.rawRows() == large.rows)
    }

    @Test("SIGTERM with a deadline of zero rolls the job back and releases it for the next worker")
    func deadlineReleases() throws {
        let large = try LargeFile()
        let worker = try WorkerProcess(database: large.pipelineURL, bucket: large.bucketDirectory,
                                       arguments: ["--lease", "300", "--shutdown-deadline", "0"])
        #expect(try large.wait(timeout: 30) { try large.job()?.status == "PROCESSING" })
        worker.signal(SIGTERM)
        #expect(worker.waitForExit(timeout: 30) == 0, "\(worker.log())")
        let released = try #require(try large.job())
        #expect(["PENDING", "SUCCESS"].contains(released.status), "\(released)")
        if released.status == "PENDING" {
            #expect(try large.rawRows() == 0)
            #expect(released.stage == "registered")
            // Released means claimable now, though its lease was 300 seconds.
            try finish(large)
        }
        #expect(try large.job()?.status == "SUCCESS")
        #expect(try large.rawRows() == large.rows)
    }

    @Test("Redis restarted empty in the middle of a job: the job still ends SUCCESS, loaded once")
    func redisRestart() throws {
        let redis = try TestRedis()
        let large = try LargeFile()
        let worker = try WorkerProcess(database: large.pipelineURL, bucket: large.bucketDirectory,
                                       arguments: ["--lease", "3", "--redis", redis.url, "--until-idle"])
        // In the middle of the job: claimed, and the client's lock taken in Redis.
        #expect(try large.wait(timeout: 30) { try large.job()?.status == "PROCESSING" && redis.exists(RedisLock.clientKey("bigco")) })
        redis.stop()
        Thread.sleep(forTimeInterval: 1.5)
        try redis.start()
        #expect(worker.waitForExit(timeout: 120) == 0, "\(worker.log())")
        #expect(try large.job()?.status == "SUCCESS")
        #expect(try large.rawRows() == large.rows)
    }

    @Test("a worker paused (SIGSTOP) past its lease is fenced out: another takes over, and the resumed one writes nothing")
    func pausedWorkerIsFencedOut() throws {
        let large = try LargeFile()
        let paused = try WorkerProcess(database: large.pipelineURL, bucket: large.bucketDirectory, arguments: ["--lease", "2", "--until-idle"])
        #expect(try large.wait(timeout: 30) { try large.job()?.status == "PROCESSING" })
        Thread.sleep(forTimeInterval: 0.2)
        paused.signal(SIGSTOP)
        // Its lease runs out; a second worker claims the job with a newer fencing token and loads it.
        try waitForLeaseExpiry(large)
        try finish(large)
        #expect(try large.job()?.status == "SUCCESS")
        paused.signal(SIGCONT)
        #expect(paused.waitForExit(timeout: 60) == 0)
        let log = paused.log()
        #expect(log.contains("fenced out") || log.contains("lease lost"), "\(log)")
        let pipeline = try large.connection()
        #expect(try pipeline.query("SELECT count(*) FROM starpipe.job_event WHERE event = 'claim'").scalar == "2")
        #expect(try large.rawRows() == large.rows, "the paused worker's rows must not land")
        #expect(try large.job()?.status == "SUCCESS")
    }

    @Test("two worker processes with --concurrency 2 share the queue: every client loaded exactly once")
    func sharedQueue() throws {
        let clients = ["acme", "globex", "initech", "umbrella", "hooli"]
        let large = try LargeFile(rows: 20_000, clients: clients)
        let first = try WorkerProcess(database: large.pipelineURL, bucket: large.bucketDirectory, arguments: ["--concurrency", "2", "--until-idle"])
        let second = try WorkerProcess(database: large.pipelineURL, bucket: large.bucketDirectory, arguments: ["--concurrency", "2", "--until-idle"])
        #expect(first.waitForExit(timeout: 120) == 0, "\(first.log())")
        #expect(second.waitForExit(timeout: 120) == 0, "\(second.log())")
        for client in clients {
            #expect(try large.job(of: client)?.status == "SUCCESS", "\(client)")
            #expect(try large.rawRows(of: client) == large.rows, "\(client)")
        }
        #expect(try large.connection().query("SELECT count(*) FROM starpipe.job").scalar == "\(clients.count)")
    }

    @Test("a job registered by another tool with a manifest the worker cannot use fails; the worker goes on")
    func unreadableManifest() throws {
        let large = try LargeFile(rows: 10)
        let key = "client=bigco/table=events/date=20261126/run_id=r1/"
        let manifest = try String(contentsOfFile: large.bucketDirectory + "/" + key + "manifest.json", encoding: .utf8)
        // The database's checks do not need "source"; the worker's manifest type does.
        try large.connection().query("SELECT starpipe.register($1::jsonb - 'source', $2, $3)",
                                     [manifest, key + "manifest.json", key + "data.json"])
        try finish(large)
        let job = try #require(try large.connection().query("SELECT status, error FROM starpipe.job").rows.first)
        #expect(job[0] == "FAILED")
        #expect(job[1]?.contains("source") == true, "\(job[1] ?? "")")
    }

    @Test("SIGTERM during a long promotion: the statement is cancelled at the deadline and the job released, production untouched")
    func deadlineCancelsLongStatement() throws {
        let large = try LargeFile(rows: 500)
        let connection = try large.connection()
        // A production trigger makes the promotion take about 10 seconds (500 rows × 20 ms).
        try connection.execute("""
            CREATE SCHEMA production;
            CREATE TABLE production.events (id bigint PRIMARY KEY, label text);
            CREATE FUNCTION production.slow() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN PERFORM pg_catalog.pg_sleep(0.02); RETURN NEW; END $$;
            CREATE TRIGGER slow BEFORE INSERT ON production.events FOR EACH ROW EXECUTE FUNCTION production.slow();
            INSERT INTO starpipe.target_schema (schema_name) VALUES ('production');
            GRANT USAGE ON SCHEMA production TO starpipe_writer;
            GRANT SELECT, INSERT, UPDATE ON production.events TO starpipe_writer;
            """)
        try connection.query("SELECT starpipe.apply_mapping($1::jsonb)", [#"""
            {"version": 1, "client": "bigco", "target_schema": "production", "tables": {"events": {"target": "events",
             "conflict_key": ["id"], "columns": {"id": {"from": "id"}, "label": {"from": "label"}}}}}
            """#])
        let worker = try WorkerProcess(database: large.pipelineURL, bucket: large.bucketDirectory,
                                       arguments: ["--lease", "300", "--shutdown-deadline", "1"])
        #expect(try large.wait(timeout: 60) { try large.job()?.stage == "validated" })
        Thread.sleep(forTimeInterval: 0.3)
        let stopped = Date()
        worker.signal(SIGTERM)
        #expect(worker.waitForExit(timeout: 8) == 0, "\(worker.log())")
        #expect(Date().timeIntervalSince(stopped) < 8)
        let job = try #require(try large.job())
        #expect(job.status == "PENDING" && job.stage == "validated", "\(job)")
        #expect(try connection.query("SELECT count(*) FROM production.events").scalar == "0")
    }
}
