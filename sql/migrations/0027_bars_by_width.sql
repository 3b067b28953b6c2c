-- Every bar width in one reader view, the width a column: a dashboard picks the width as a quoted value
-- (`WHERE width = '$bar'`) instead of building a relation name from a variable (`FROM bars_${bar}`), which a viewer
-- could turn into SQL. The planner keeps only the branch whose constant matches, so a panel reads one relation.
CREATE VIEW bars_by_width AS
SELECT '1m'::text AS width, * FROM bars_1m
UNION ALL
SELECT '5m'::text, * FROM bars_5m
UNION ALL
SELECT '1h'::text, * FROM bars_1h;
