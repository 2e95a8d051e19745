-- One-off copy of the pre-2024 per-region tables (each with a JSONB column `stats`) into
-- `events` (golang-migrate version 3). On a database without those tables it does nothing.
DO $$
DECLARE
    legacy TEXT;
BEGIN
    FOREACH legacy IN ARRAY ARRAY['mdw', 'fra', 'sin', 'nyc', 'lax', 'lon', 'prg', 'sao', 'atl',
                                  'hnd', 'mad', 'mia', 'mos2', 'sto', 'syd', 'sea', 'tor', 'sjo',
                                  'ash', 'hou', 'atl2']
    LOOP
        CONTINUE WHEN to_regclass(quote_ident(legacy)) IS NULL;
        RAISE NOTICE 'copying legacy table % into events', legacy;
        EXECUTE format(
            'INSERT INTO events (event_time, orchestrator, region_id, payload)
             SELECT to_timestamp((stats ->> ''timestamp'')::bigint) AT TIME ZONE ''UTC'',
                    stats ->> ''orchestrator'',
                    (SELECT r.id
                       FROM regions r
                       JOIN job_types j ON j.id = r.job_type_id
                      WHERE r.name = upper(%L)
                        AND j.name = CASE
                                         WHEN stats ->> ''model'' IS NULL AND stats ->> ''pipeline'' IS NULL
                                             THEN ''transcoding''
                                         ELSE ''ai''
                                     END),
                    stats
               FROM %I', legacy, legacy);
    END LOOP;
END
$$;
