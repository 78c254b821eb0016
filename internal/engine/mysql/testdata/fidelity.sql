-- fidelity.sql: the source data set of the migration fidelity tests
-- (fidelity_test.go). Each table holds a case a faithful migration must
-- carry over byte for byte; testdb.CompareDatabase then compares the
-- source and the target.
--
-- Format, as loadSQL in fidelity_test.go reads it:
--   * {{db}} stands for the database; the test creates it and names it.
--   * A statement ends with a ';' at the end of a line. Blank lines and
--     lines starting with '--' are dropped, inside statements too.
--   * A statement whose body has lines ending in ';' (a trigger or a
--     routine with BEGIN ... END) goes between a line '-- begin' and a
--     line '-- end' and is sent whole, a final ';' removed: no DELIMITER.
--     Inside such a block every line is kept as written.
--   * Every statement runs in order on one session, so a SET (time_zone,
--     sql_mode) holds for the statements after it.
--   * The data is deterministic: loaded twice, it compares equal.

USE `{{db}}`;

-- Not the servers' default (utf8mb4_general_ci): the migration must create
-- the database as the source has it. Tables without a collation of their
-- own inherit it.
ALTER DATABASE `{{db}}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci COMMENT 'fidelity: it''s "quoted" — 数据';

-- TIMESTAMP literals below are UTC.
SET time_zone = '+00:00';

-- Text: 4-byte characters, combining marks, latin1 high bytes, trailing
-- spaces (CHAR drops them on store, VARCHAR keeps them), '' against NULL.
CREATE TABLE texts (
  id INT NOT NULL PRIMARY KEY,
  u VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL COMMENT 'utf8mb4: emoji, CJK, combining marks',
  l VARCHAR(200) CHARACTER SET latin1 NULL COMMENT 'latin1 with high bytes',
  fixed CHAR(10) NULL,
  var VARCHAR(10) NULL,
  txt TEXT NULL,
  long_txt LONGTEXT NULL
) ENGINE=InnoDB COMMENT='texts: it''s "quoted" — 文本 ☃';
INSERT INTO texts VALUES
  (1, '😀🎉👨‍👩‍👧 emoji', 'é ÿ ü ß', 'pad  ', 'pad  ', '中文 日本語 한국어', REPEAT('長', 100000)),
  (2, CONVERT(X'65CC81' USING utf8mb4), 'café', '  lead', '  lead', 'Ω≈ç√ 𝄞', ''),
  (3, '', '', '', '', '', ''),
  (4, NULL, NULL, NULL, NULL, NULL, NULL),
  (5, 'tab\tnewline\nquote'' backslash\\ nul\0end', 'x', 'a', 'a', 'line1\r\nline2', NULL);
-- Every latin1 byte: 0x80..0xFF, then 0x00..0x7F.
INSERT INTO texts (id, l)
  SELECT 6, CONVERT(UNHEX(GROUP_CONCAT(LPAD(HEX(seq), 2, '0') ORDER BY seq SEPARATOR '')) USING latin1) FROM seq_128_to_255;
INSERT INTO texts (id, l)
  SELECT 7, CONVERT(UNHEX(GROUP_CONCAT(LPAD(HEX(seq), 2, '0') ORDER BY seq SEPARATOR '')) USING latin1) FROM seq_0_to_127;

-- Binary: every byte value alone (BINARY pads with 0x00), all 256 in one
-- value, 2 MiB in a LONGBLOB, '' against NULL.
CREATE TABLE blobs (
  id INT NOT NULL PRIMARY KEY,
  b BINARY(4) NULL COMMENT 'right-padded with 0x00 by the server',
  vb VARBINARY(300) NULL,
  bl BLOB NULL,
  lb LONGBLOB NULL
);
INSERT INTO blobs (id, b, vb, bl)
  SELECT seq, UNHEX(LPAD(HEX(seq), 2, '0')), UNHEX(LPAD(HEX(seq), 2, '0')), UNHEX(REPEAT(LPAD(HEX(seq), 2, '0'), seq + 1))
  FROM seq_0_to_255;
INSERT INTO blobs (id, vb, bl)
  SELECT 1000, x, REVERSE(x) FROM (
    SELECT UNHEX(GROUP_CONCAT(LPAD(HEX(seq), 2, '0') ORDER BY seq SEPARATOR '')) AS x FROM seq_0_to_255
  ) AS every_byte;
-- Pseudo-random bytes, so no period can hide a misplaced chunk.
SET SESSION group_concat_max_len = 4194304;
INSERT INTO blobs (id, lb)
  SELECT 1001, GROUP_CONCAT(UNHEX(SHA2(seq, 512)) ORDER BY seq SEPARATOR '') FROM seq_1_to_32768;
INSERT INTO blobs VALUES (1002, '', '', '', ''), (1003, NULL, NULL, NULL, NULL), (1004, X'00', X'00', X'00', X'00');

-- Numbers: every integer type at both ends, DECIMAL(65,30) at both ends,
-- FLOAT and DOUBLE values that print inexactly, BIT patterns.
CREATE TABLE numbers (
  id INT NOT NULL PRIMARY KEY,
  ti TINYINT NULL, uti TINYINT UNSIGNED NULL,
  si SMALLINT NULL, usi SMALLINT UNSIGNED NULL,
  mi MEDIUMINT NULL, umi MEDIUMINT UNSIGNED NULL,
  i INT NULL, ui INT UNSIGNED NULL,
  bi BIGINT NULL, ubi BIGINT UNSIGNED NULL,
  zf INT(8) UNSIGNED ZEROFILL NULL,
  dec65 DECIMAL(65,30) NULL, dec0 DECIMAL(10,0) NULL,
  f FLOAT NULL, dbl DOUBLE NULL,
  b1 BIT(1) NULL, b5 BIT(5) NULL, b64 BIT(64) NULL
);
INSERT INTO numbers VALUES
  (1, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0, 0,
      -99999999999999999999999999999999999.999999999999999999999999999999, -9999999999,
      -3.4028234e38, -1.7976931348623157e308, b'0', b'00000', b'0'),
  (2, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807, 18446744073709551615, 12345678,
      99999999999999999999999999999999999.999999999999999999999999999999, 9999999999,
      3.4028234e38, 1.7976931348623157e308, b'1', b'11111',
      b'1111111111111111111111111111111111111111111111111111111111111111'),
  (3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
      0.000000000000000000000000000001, 0, 16777216, 0.1e0 + 0.2e0, b'1', b'10101', 0xAAAAAAAAAAAAAAAA),
  (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO numbers (id, dec65, f, dbl, b64) VALUES
  (5, -0.000000000000000000000000000001, 1.17549435e-38, 2.2250738585072014e-308, 0x8000000000000001),
  (6, 12345678901234567890.123456789012345678901234567890, 0.1, 4.9e-324, 1),
  (7, 0.5, 16777217, 0.1, 0x0102030405060708),
  (8, -1, 1.4e-45, -4.9e-324, 0);

-- Temporal values only sql_mode '' accepts: zero dates, zero parts.
SET sql_mode = '';
CREATE TABLE temporals (
  id INT NOT NULL PRIMARY KEY,
  d DATE NULL,
  dt DATETIME NULL,
  dt6 DATETIME(6) NULL,
  ts3 TIMESTAMP(3) NULL,
  t6 TIME(6) NULL,
  y YEAR NULL,
  changed TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
);
INSERT INTO temporals VALUES
  (1, '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00.000000', '0000-00-00 00:00:00.000', '00:00:00.000000', 0,
      '2001-01-01 00:00:00'),
  (2, '2020-00-15', '2020-02-00 10:00:00', '1000-01-01 00:00:00.000000', '1970-01-01 00:00:01.000', '-838:59:59.000000', 1901,
      '2001-01-01 00:00:00.000001'),
  (3, '9999-12-31', '9999-12-31 23:59:59', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999', '838:59:59.000000', 2155,
      '2038-01-19 03:14:07.999999'),
  (4, '1000-01-01', '2024-02-29 12:34:56', '2024-02-29 12:34:56.123456', '2024-03-31 01:30:00.5', '-00:00:00.000001', 2024,
      '2024-10-27 01:30:00'),
  (5, NULL, NULL, NULL, NULL, NULL, NULL, '2001-01-01 00:00:00');

-- ENUM and SET: a declared '' member (index 1) and, in strict_e, the
-- invalid value '' (index 0) that sql_mode '' stores for a non-member.
CREATE TABLE enums (
  id INT NOT NULL PRIMARY KEY,
  e ENUM('', 'a', 'b c', 'é') NULL COMMENT 'a declared empty member',
  strict_e ENUM('x', 'y') NULL COMMENT 'holds the error value, index 0',
  s SET('a', 'b', 'c d', 'é') NULL
);
INSERT INTO enums VALUES
  (1, '', 'x', ''), (2, 'a', 'y', 'a,b'), (3, 'é', 'x', 'a,b,c d,é'), (4, NULL, NULL, NULL), (5, 'b c', 'not a member', 'b');
SET sql_mode = DEFAULT;

-- JSON (LONGTEXT in MariaDB): kept as written, escapes and spacing too.
CREATE TABLE docs (id INT NOT NULL PRIMARY KEY, j JSON NULL);
INSERT INTO docs VALUES
  (1, '{"emoji": "\\ud83d\\ude00", "e": "\\u00e9", "raw": "é😀", "nested": {"a": [1, 2.50, {"b": null, "c": [true, false]}]}}'),
  (2, '[]'), (3, 'null'), (4, NULL), (5, '"\\"quoted\\" \\\\ back\\/slash"'), (6, '{"a":1,   "a":2}');

-- No key at all, with duplicate rows: each must arrive as often as it is here.
CREATE TABLE no_key (a INT NULL, s VARCHAR(10) NULL, b VARBINARY(4) NULL);
INSERT INTO no_key VALUES
  (1, 'x', X'00'), (1, 'x', X'00'), (1, 'x', X'00'), (1, 'x', NULL), (1, 'X', X'00'),
  (NULL, NULL, NULL), (NULL, NULL, NULL), (2, '', ''), (2, NULL, '');

-- Keys a copy is chunked by.
CREATE TABLE composite_pk (tenant INT NOT NULL, seq SMALLINT NOT NULL, label VARCHAR(20) NULL, PRIMARY KEY (tenant, seq));
INSERT INTO composite_pk VALUES (1, 1, 'a'), (1, 2, NULL), (2, 1, 'b'), (-1, -1, 'negative');

CREATE TABLE varchar_pk (
  k VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
  v INT NULL
);
INSERT INTO varchar_pk VALUES
  ('a', 1), ('A', 2), ('ä', 3), (CONVERT(X'61CC88' USING utf8mb4), 4), ('😀', 5), ('中文', 6), ('', 7), ('  lead', 8), ('z', 9), ('Z', 10);

CREATE TABLE ubig_pk (id BIGINT UNSIGNED NOT NULL PRIMARY KEY, note VARCHAR(20) NULL);
INSERT INTO ubig_pk VALUES
  (0, 'zero'), (1, 'one'), (9223372036854775807, 'max signed'), (9223372036854775808, 'max signed + 1'), (18446744073709551615, 'max');

-- 20,000 rows with gaps in the key: several chunks.
CREATE TABLE big (id INT NOT NULL PRIMARY KEY, n BIGINT NOT NULL, s VARCHAR(40) NULL, h BINARY(20) NULL, KEY k_n (n));
INSERT INTO big SELECT seq * 3, seq * seq, IF(seq % 100 = 0, NULL, CONCAT('row ', seq, ' ☃')), UNHEX(SHA1(seq)) FROM seq_1_to_20000;

-- 5,000 rows keyed by a case- and accent-insensitive string and a binary
-- string: the key order is the collation's, not the bytes'.
CREATE TABLE regions (
  region VARCHAR(16) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
  code VARBINARY(8) NOT NULL,
  payload VARCHAR(64) NULL,
  PRIMARY KEY (region, code)
);
INSERT INTO regions
  SELECT ELT(seq % 6 + 1, 'north', 'North-East', 'südost', 'Øst', '東京', 'ägypten'), LEFT(UNHEX(SHA1(seq)), 8), CONCAT('payload ', seq)
  FROM seq_1_to_5000;

-- Names that need quoting. Identifiers cannot hold 4-byte characters
-- (MariaDB stores them as utf8mb3), so the "emoji" is U+2603.
CREATE TABLE `order` (id INT NOT NULL PRIMARY KEY, `select` VARCHAR(20) NULL, `from` INT NULL, `group` DATE NULL);
INSERT INTO `order` VALUES (1, 'where', 2, '2024-01-01'), (2, NULL, NULL, NULL);

CREATE TABLE `weird name-with.dots` (
  id INT NOT NULL PRIMARY KEY,
  `a``b` VARCHAR(10) NULL COMMENT 'a backtick in the name',
  `☃ snow` INT NULL,
  `col with space` INT NULL,
  `Ünïcödé` INT NULL
);
INSERT INTO `weird name-with.dots` VALUES (1, 'tick', 2, 3, 4), (2, NULL, NULL, NULL, NULL);

-- Generated columns: the copy must leave them to the server.
CREATE TABLE `generated` (
  id INT NOT NULL PRIMARY KEY,
  price DECIMAL(10,2) NOT NULL,
  qty INT NOT NULL,
  total DECIMAL(12,2) AS (price * qty) VIRTUAL,
  label VARCHAR(40) AS (CONCAT('#', id, ' x', qty)) STORED,
  KEY k_total (total),
  KEY k_label (label)
);
INSERT INTO `generated` (id, price, qty) VALUES (1, 9.99, 3), (2, 0.01, 0), (3, 12345678.90, 7);

-- AUTO_INCREMENT beyond the largest key (rows deleted), and on an empty table.
CREATE TABLE counters (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, note VARCHAR(10) NULL) AUTO_INCREMENT=1000;
INSERT INTO counters (note) VALUES ('a'), ('b'), ('c'), ('d'), ('e');
DELETE FROM counters WHERE id > 1002;
CREATE TABLE counters_empty (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=1000;

CREATE TABLE partitioned (
  id INT NOT NULL,
  created DATE NOT NULL,
  amount INT NULL,
  PRIMARY KEY (id, created)
) PARTITION BY RANGE (YEAR(created)) (
  PARTITION p2019 VALUES LESS THAN (2020) COMMENT = 'before 2020',
  PARTITION p2020 VALUES LESS THAN (2021),
  PARTITION pmax VALUES LESS THAN MAXVALUE
);
INSERT INTO partitioned VALUES (1, '2019-06-01', 10), (2, '2020-06-01', 20), (3, '2024-06-01', NULL), (4, '1999-12-31', -1);

CREATE TABLE indexed (
  id INT NOT NULL PRIMARY KEY,
  email VARCHAR(100) NOT NULL COMMENT 'it''s the "login" — 登录 ☃',
  first_name VARCHAR(50) NULL,
  last_name VARCHAR(50) NULL,
  bio TEXT NULL,
  UNIQUE KEY uk_email (email),
  KEY k_name (last_name, first_name),
  KEY k_bio_prefix (bio(10)),
  KEY k_last_desc (last_name DESC) COMMENT 'a descending index',
  FULLTEXT KEY ft_bio (bio)
) ENGINE=InnoDB COMMENT='indexes: unique, composite, prefix, descending, full-text';
INSERT INTO indexed VALUES
  (1, 'a@example.com', 'Ada', 'Lovelace', 'mathematician and writer'),
  (2, 'b@example.com', NULL, NULL, NULL),
  (3, 'ü@例え.jp', 'Ünal', 'Ölçer', 'ümlaut — 中文');

-- Foreign keys: child sorts before parent, and parent refers to itself,
-- so rows cannot be loaded table by table with the checks on.
CREATE TABLE parent (
  id INT NOT NULL PRIMARY KEY,
  manager_id INT NULL,
  name VARCHAR(20) NULL,
  KEY k_manager (manager_id),
  CONSTRAINT fk_parent_manager FOREIGN KEY (manager_id) REFERENCES parent (id) ON DELETE SET NULL
);
CREATE TABLE child (
  id INT NOT NULL PRIMARY KEY,
  parent_id INT NOT NULL,
  note VARCHAR(20) NULL,
  KEY k_parent (parent_id),
  CONSTRAINT fk_child_parent FOREIGN KEY (parent_id) REFERENCES parent (id) ON DELETE CASCADE ON UPDATE RESTRICT
);
INSERT INTO parent VALUES (1, NULL, 'root'), (2, 1, 'second'), (3, 2, 'third');
INSERT INTO child VALUES (10, 1, 'a'), (11, 1, 'b'), (12, 3, NULL);

-- Triggers that rewrite rows: the data below went through them once. A
-- migration that fires them again while loading changes note and adds
-- audit_log rows, which the comparison catches.
CREATE TABLE audited (id INT NOT NULL PRIMARY KEY, note VARCHAR(60) NULL);
CREATE TABLE audit_log (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, audited_id INT NOT NULL, what VARCHAR(20) NOT NULL);
CREATE TRIGGER audited_bi BEFORE INSERT ON audited FOR EACH ROW SET NEW.note = CONCAT('trigger:', IFNULL(NEW.note, ''));
-- begin
CREATE TRIGGER audited_bi_upper BEFORE INSERT ON audited FOR EACH ROW FOLLOWS audited_bi
BEGIN
  IF NEW.id > 100 THEN
    SET NEW.note = UPPER(NEW.note);
  END IF;
END;
-- end
CREATE TRIGGER audited_ai AFTER INSERT ON audited FOR EACH ROW INSERT INTO audit_log (audited_id, what) VALUES (NEW.id, 'insert');
INSERT INTO audited VALUES (1, 'first'), (2, NULL), (101, 'loud');

-- Views: v_counts reads v_family and sorts before it, so views must be
-- created in dependency order.
CREATE VIEW v_family AS
  SELECT p.id AS parent_id, p.name, c.id AS child_id, c.note FROM parent p JOIN child c ON c.parent_id = p.id;
CREATE SQL SECURITY INVOKER VIEW v_counts AS SELECT parent_id, COUNT(*) AS children FROM v_family GROUP BY parent_id;
CREATE ALGORITHM = MERGE VIEW v_even AS SELECT id, s FROM big WHERE id % 2 = 0 WITH CASCADED CHECK OPTION;

-- Routines with semicolons in their bodies.
-- begin
CREATE PROCEDURE p_children(IN pid INT, OUT n INT)
  READS SQL DATA
  COMMENT 'counts a parent''s children ☃'
BEGIN
  DECLARE x INT DEFAULT 0;
  SELECT COUNT(*) INTO x FROM child WHERE parent_id = pid;
  SET n = x;
END;
-- end
-- begin
CREATE FUNCTION f_label(x INT) RETURNS VARCHAR(40) CHARSET utf8mb4
  DETERMINISTIC
  SQL SECURITY INVOKER
BEGIN
  DECLARE s VARCHAR(40);
  SET s = CONCAT('n=', x, ' — ☃');
  RETURN s;
END;
-- end
-- Created under its own sql_mode, in which || joins strings: it must be
-- recreated under that mode to mean the same.
SET sql_mode = 'PIPES_AS_CONCAT';
CREATE PROCEDURE p_pipes() SELECT 'a' || 'b' AS joined;
SET sql_mode = DEFAULT;

-- An event that never runs, created in a time zone of its own (events
-- keep theirs).
SET time_zone = '+08:00';
CREATE EVENT ev_cleanup ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 03:00:00'
  ON COMPLETION PRESERVE DISABLE COMMENT 'nightly — 清理'
  DO DELETE FROM audit_log WHERE id < 0;
SET time_zone = '+00:00';
