//! The project's own area-code and country tables.

use chrono_tz::Tz;

pub(super) fn zone_of_area_code(area: u16) -> Option<Tz> {
    NANP_AREA_CODES
        .iter()
        .find(|(_, codes)| codes.binary_search(&area).is_ok())
        .and_then(|(zone, _)| zone.parse().ok())
}

pub(super) fn is_split(area: u16) -> bool {
    SPLIT_AREA_CODES.contains(&area)
}

/// Country calling code → (zone, whether the country has one zone only).
pub(super) fn zone_of_country(code: u16) -> Option<(Tz, bool)> {
    COUNTRIES
        .iter()
        .find(|(c, _, _)| *c == code)
        .and_then(|(_, zone, single)| zone.parse().ok().map(|tz| (tz, *single)))
}

/// Countries outside NANP. Multi-zone countries carry their most populous
/// zone and `false`.
const COUNTRIES: &[(u16, &str, bool)] = &[
    (7, "Europe/Moscow", false),
    (20, "Africa/Cairo", true),
    (27, "Africa/Johannesburg", true),
    (30, "Europe/Athens", true),
    (31, "Europe/Amsterdam", true),
    (32, "Europe/Brussels", true),
    (33, "Europe/Paris", true),
    (34, "Europe/Madrid", false),
    (36, "Europe/Budapest", true),
    (39, "Europe/Rome", true),
    (40, "Europe/Bucharest", true),
    (41, "Europe/Zurich", true),
    (43, "Europe/Vienna", true),
    (44, "Europe/London", true),
    (45, "Europe/Copenhagen", true),
    (46, "Europe/Stockholm", true),
    (47, "Europe/Oslo", true),
    (48, "Europe/Warsaw", true),
    (49, "Europe/Berlin", true),
    (51, "America/Lima", true),
    (52, "America/Mexico_City", false),
    (54, "America/Argentina/Buenos_Aires", true),
    (55, "America/Sao_Paulo", false),
    (56, "America/Santiago", false),
    (57, "America/Bogota", true),
    (58, "America/Caracas", true),
    (60, "Asia/Kuala_Lumpur", true),
    (61, "Australia/Sydney", false),
    (62, "Asia/Jakarta", false),
    (63, "Asia/Manila", true),
    (64, "Pacific/Auckland", false),
    (65, "Asia/Singapore", true),
    (66, "Asia/Bangkok", true),
    (81, "Asia/Tokyo", true),
    (82, "Asia/Seoul", true),
    (84, "Asia/Ho_Chi_Minh", true),
    (86, "Asia/Shanghai", true),
    (90, "Europe/Istanbul", true),
    (91, "Asia/Kolkata", true),
    (92, "Asia/Karachi", true),
    (94, "Asia/Colombo", true),
    (234, "Africa/Lagos", true),
    (254, "Africa/Nairobi", true),
    (351, "Europe/Lisbon", false),
    (352, "Europe/Luxembourg", true),
    (353, "Europe/Dublin", true),
    (354, "Atlantic/Reykjavik", true),
    (358, "Europe/Helsinki", true),
    (380, "Europe/Kyiv", true),
    (420, "Europe/Prague", true),
    (421, "Europe/Bratislava", true),
    (502, "America/Guatemala", true),
    (503, "America/El_Salvador", true),
    (504, "America/Tegucigalpa", true),
    (506, "America/Costa_Rica", true),
    (507, "America/Panama", true),
    (852, "Asia/Hong_Kong", true),
    (880, "Asia/Dhaka", true),
    (971, "Asia/Dubai", true),
    (972, "Asia/Jerusalem", true),
    (977, "Asia/Kathmandu", true),
];

pub(super) const NANP_AREA_CODES: &[(&str, &[u16])] = &[
    (
        "America/New_York",
        &[
            201, 202, 203, 207, 212, 215, 216, 219, 220, 223, 227, 229, 231, 234, 239, 240, 248,
            252, 260, 267, 269, 270, 272, 276, 283, 301, 302, 304, 305, 313, 315, 317, 321, 324,
            326, 329, 330, 332, 336, 339, 347, 351, 352, 363, 364, 380, 386, 401, 404, 407, 410,
            412, 413, 419, 434, 440, 443, 445, 448, 463, 470, 472, 475, 478, 484, 502, 508, 513,
            516, 517, 518, 540, 551, 561, 567, 570, 571, 574, 582, 585, 586, 603, 606, 607, 609,
            610, 614, 616, 617, 631, 640, 645, 646, 656, 667, 678, 680, 681, 686, 703, 704, 706,
            716, 717, 718, 724, 727, 728, 732, 734, 740, 743, 754, 757, 762, 765, 770, 771, 772,
            774, 781, 786, 802, 803, 804, 810, 812, 813, 814, 821, 826, 828, 835, 838, 839, 843,
            845, 848, 850, 854, 856, 857, 859, 860, 862, 863, 864, 865, 878, 904, 906, 908, 910,
            912, 914, 917, 919, 929, 930, 934, 937, 941, 943, 947, 948, 954, 959, 973, 978, 980,
            984, 989,
        ],
    ),
    (
        "America/Chicago",
        &[
            205, 210, 214, 217, 218, 224, 225, 228, 235, 251, 254, 256, 262, 274, 281, 308, 309,
            312, 314, 316, 318, 319, 320, 325, 327, 331, 334, 337, 346, 353, 361, 402, 405, 409,
            414, 417, 423, 430, 432, 447, 464, 469, 479, 501, 504, 507, 512, 515, 531, 534, 539,
            557, 563, 572, 573, 580, 601, 605, 608, 612, 615, 618, 620, 629, 630, 636, 641, 651,
            659, 660, 662, 682, 689, 701, 708, 712, 713, 715, 726, 730, 731, 737, 763, 769, 773,
            779, 785, 806, 815, 816, 817, 830, 832, 847, 870, 872, 901, 903, 913, 918, 920, 931,
            936, 938, 940, 945, 952, 956, 972, 975, 979, 985,
        ],
    ),
    (
        "America/Los_Angeles",
        &[
            206, 209, 213, 253, 279, 310, 323, 341, 350, 360, 369, 408, 415, 424, 425, 442, 458,
            503, 509, 510, 530, 541, 559, 562, 564, 619, 626, 628, 650, 657, 661, 669, 702, 707,
            714, 725, 738, 747, 760, 775, 805, 818, 820, 831, 840, 858, 909, 916, 925, 949, 951,
            971,
        ],
    ),
    (
        "America/Toronto",
        &[
            226, 249, 263, 289, 343, 354, 365, 367, 382, 416, 418, 437, 438, 450, 468, 514, 519,
            548, 579, 581, 613, 647, 683, 705, 742, 753, 807, 819, 873, 905, 942,
        ],
    ),
    (
        "America/Denver",
        &[
            303, 307, 385, 406, 435, 505, 575, 719, 720, 748, 801, 915, 970, 983,
        ],
    ),
    ("America/Vancouver", &[236, 250, 257, 604, 672, 778]),
    ("America/Edmonton", &[368, 403, 587, 780, 825]),
    ("America/Phoenix", &[480, 520, 602, 623, 928]),
    ("America/Halifax", &[428, 506, 782, 902]),
    ("America/Regina", &[306, 474, 639]),
    ("America/Santo_Domingo", &[809, 829, 849]),
    ("America/Winnipeg", &[204, 431, 584]),
    ("America/Boise", &[208, 986]),
    ("America/Jamaica", &[658, 876]),
    ("America/Puerto_Rico", &[787, 939]),
    ("America/St_Johns", &[709, 879]),
    ("America/Anchorage", &[907]),
    ("America/Anguilla", &[264]),
    ("America/Antigua", &[268]),
    ("America/Barbados", &[246]),
    ("America/Cayman", &[345]),
    ("America/Dominica", &[767]),
    ("America/Fort_Nelson", &[867]),
    ("America/Grand_Turk", &[649]),
    ("America/Grenada", &[473]),
    ("America/Lower_Princes", &[721]),
    ("America/Montserrat", &[664]),
    ("America/Nassau", &[242]),
    ("America/Port_of_Spain", &[868]),
    ("America/St_Kitts", &[869]),
    ("America/St_Lucia", &[758]),
    ("America/St_Thomas", &[340]),
    ("America/St_Vincent", &[784]),
    ("America/Tortola", &[284]),
    ("Atlantic/Bermuda", &[441]),
    ("Pacific/Guam", &[671]),
    ("Pacific/Honolulu", &[808]),
    ("Pacific/Pago_Pago", &[684]),
    ("Pacific/Saipan", &[670]),
];
pub(super) const SPLIT_AREA_CODES: &[u16] = &[
    208, 219, 250, 270, 308, 310, 418, 423, 541, 574, 605, 606, 620, 701, 709, 775, 785, 807, 812,
    850, 867, 879, 906, 907, 928, 986,
];
