-- Reference data (golang-migrate version 2): the job types and the 26 seed regions,
-- in the original insertion order, which /api/regions reports by id.

INSERT INTO job_types (name) VALUES ('transcoding'), ('ai');

INSERT INTO regions (name, display_name, job_type_id) VALUES
    ('GLOBAL', 'Global', 1),
    ('GLOBAL', 'Global', 2),
    ('ATL', 'Atlanta', 1),
    ('ATL2', 'Atlanta 2', 1),
    ('MDW', 'Chicago', 1),
    ('MDW', 'Chicago', 2),
    ('FRA', 'Frankfurt', 1),
    ('FRA', 'Frankfurt', 2),
    ('HOU', 'Houston', 1),
    ('LON', 'London', 1),
    ('LAX', 'Los Angeles', 1),
    ('LAX', 'Los Angeles', 2),
    ('MAD', 'Madrid', 1),
    ('MIA', 'Miami', 1),
    ('MOS2', 'Moscow', 1),
    ('ASH', 'Nashua', 1),
    ('NYC', 'New York City', 1),
    ('PRG', 'Prague', 1),
    ('SJO', 'San Jose', 1),
    ('SAO', 'São Paulo', 1),
    ('SEA', 'Seattle', 1),
    ('SIN', 'Singapore', 1),
    ('STO', 'Stockholm', 1),
    ('SYD', 'Sydney', 1),
    ('HND', 'Tokyo', 1),
    ('TOR', 'Toronto', 1);
